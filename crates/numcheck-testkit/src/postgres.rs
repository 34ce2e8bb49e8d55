//! A PostgreSQL database of a test's own, created on the server named by `NUMCHECK_TEST_PG`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and dropped at the end. Without a
//! reachable server the test fails, saying so; it never passes silently.

use sqlx::{Connection, Executor, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The server tests create their databases on: `NUMCHECK_TEST_PG`, or the machine's own.
pub fn admin_url() -> String {
    std::env::var("NUMCHECK_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let host_start = main.find("://").map_or(0, |i| i + 3);
    let base = match main[host_start..].find('/') {
        Some(i) => &main[..host_start + i],
        None => main,
    };
    format!("{base}/{db}{query}")
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {url} is unreachable ({e}); start it, or set NUMCHECK_TEST_PG to a \
             server where this user may create databases"
        )
    })
}

/// A database of the test's own, dropped (connections and all) when this goes out of scope,
/// also when the test panics.
#[derive(Debug)]
pub struct TestDb {
    admin: String,
    name: String,
    /// The URL of the database.
    pub url: String,
}

impl TestDb {
    /// Creates a database with a random name on [`admin_url`]'s server.
    pub async fn new() -> TestDb {
        use std::hash::{BuildHasher, RandomState};
        let admin = admin_url();
        let random = RandomState::new().hash_one((std::process::id(), std::time::Instant::now()));
        let name = format!("numcheck_t_{random:016x}");
        let mut conn = connect(&admin).await;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin}: {e}"));
        conn.close().await.ok();
        TestDb {
            url: with_database(&admin, &name),
            admin,
            name,
        }
    }

    /// A new connection to the database, to look behind the code under test.
    pub async fn connection(&self) -> PgConnection {
        connect(&self.url).await
    }

    /// The one text value `sql` selects.
    pub async fn query_text(&self, sql: &str) -> String {
        let mut conn = self.connection().await;
        let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
        value
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // A thread of its own: the test's runtime may be the one dropping this.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                conn.execute(sqlx::AssertSqlSafe(sql)).await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_rewritten() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}

//! Where a task's files live in the blob store. Every key numcheck writes or reads is built
//! here, and the start-up sweep reads keys back here, so the layout has one owner:
//!
//! | key | what |
//! |---|---|
//! | `uploads/<task>.txt` | the upload as text (a spreadsheet's phone column, one cell a line) |
//! | `work/<task>/<seq>.csv` | a chunk's result rows |
//! | `work/<task>/<seq>.rej` | a chunk's rejected lines |
//! | `work/<task>/<seq>.nums` | a chunk's sorted unique numbers (what the task is charged) |
//! | `work/<task>/<seq>.sum` | a chunk's counts, as JSON |
//! | `results/<task>.zip` | the result |
//! | `results/<task>.summary.json` | the result's `summary.json`, kept for the task view |
//!
//! `<seq>` is the chunk's number in eight digits, so listings sort in chunk order.

use numcheck_core::TaskId;

/// The three areas of the blob store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Uploads,
    Work,
    Results,
}

impl Area {
    pub const ALL: [Area; 3] = [Area::Uploads, Area::Work, Area::Results];

    /// The area's key prefix (without the slash).
    pub fn prefix(self) -> &'static str {
        match self {
            Area::Uploads => "uploads",
            Area::Work => "work",
            Area::Results => "results",
        }
    }

    /// The task id a key of this area names (not checked to be a valid id): the first path
    /// segment of a work key, the file name up to its first dot elsewhere. `None` for a key
    /// outside the area.
    pub fn task_of(self, key: &str) -> Option<&str> {
        let rest = key.strip_prefix(self.prefix())?.strip_prefix('/')?;
        let id = match self {
            Area::Work => rest.split('/').next(),
            Area::Uploads | Area::Results => rest.split(['.', '/']).next(),
        };
        id.filter(|id| !id.is_empty())
    }
}

/// One output of a processed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Result rows (CSV, no header).
    Rows,
    /// Rejected lines (CSV, no header).
    Rejected,
    /// Sorted unique numbers, eight bytes each.
    Numbers,
    /// The chunk's counts (JSON).
    Summary,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Rows, Part::Rejected, Part::Numbers, Part::Summary];

    fn extension(self) -> &'static str {
        match self {
            Part::Rows => "csv",
            Part::Rejected => "rej",
            Part::Numbers => "nums",
            Part::Summary => "sum",
        }
    }
}

/// Where one task's (or one local check's) chunk outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    prefix: String,
}

impl Parts {
    /// The parts of a local check, in a scratch blob store of its own.
    pub fn scratch() -> Parts {
        Parts {
            prefix: Area::Work.prefix().to_owned(),
        }
    }

    /// The prefix all parts share (to list or remove them at once).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of one output of chunk `seq`.
    pub fn key(&self, seq: i64, part: Part) -> String {
        format!("{}/{seq:08}.{}", self.prefix, part.extension())
    }
}

/// The keys of one task's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFiles {
    id: String,
}

impl TaskFiles {
    pub fn of(task: &TaskId) -> TaskFiles {
        TaskFiles {
            id: task.to_string(),
        }
    }

    /// The upload, as text.
    pub fn upload(&self) -> String {
        format!("{}/{}.txt", Area::Uploads.prefix(), self.id)
    }

    /// The chunk outputs.
    pub fn parts(&self) -> Parts {
        Parts {
            prefix: format!("{}/{}", Area::Work.prefix(), self.id),
        }
    }

    /// The result zip.
    pub fn result(&self) -> String {
        format!("{}/{}.zip", Area::Results.prefix(), self.id)
    }

    /// The result's `summary.json`, kept beside the zip.
    pub fn summary(&self) -> String {
        format!("{}/{}.summary.json", Area::Results.prefix(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_task_reads_back_as_that_task_in_its_area() {
        let id: TaskId = "d4g24nep2jvh04o9uoh0"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let files = TaskFiles::of(&id);
        assert_eq!(files.upload(), "uploads/d4g24nep2jvh04o9uoh0.txt");
        assert_eq!(files.result(), "results/d4g24nep2jvh04o9uoh0.zip");
        assert_eq!(files.summary(), "results/d4g24nep2jvh04o9uoh0.summary.json");
        assert_eq!(
            files.parts().key(7, Part::Rows),
            "work/d4g24nep2jvh04o9uoh0/00000007.csv"
        );
        let mut keys = vec![
            (Area::Uploads, files.upload()),
            (Area::Results, files.result()),
            (Area::Results, files.summary()),
        ];
        for part in Part::ALL {
            keys.push((Area::Work, files.parts().key(3, part)));
        }
        for (area, key) in keys {
            assert_eq!(area.task_of(&key), Some("d4g24nep2jvh04o9uoh0"), "{key}");
            for other in Area::ALL.into_iter().filter(|a| *a != area) {
                assert_eq!(other.task_of(&key), None, "{key} is not in {other:?}");
            }
        }
    }

    #[test]
    fn keys_outside_the_layout_name_no_task() {
        assert_eq!(Area::Uploads.task_of("uploads"), None);
        assert_eq!(Area::Uploads.task_of("uploads/"), None);
        assert_eq!(Area::Work.task_of("workshop/x"), None);
        assert_eq!(Parts::scratch().key(0, Part::Numbers), "work/00000000.nums");
    }
}

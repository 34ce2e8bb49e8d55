//! Multipart forms, streamed: the `file` field goes to the engine's intake as it arrives (never
//! held whole in memory), the other fields are read as short texts into the form type the
//! engine defines ([`TaskForm`], [`PreviewForm`]). The fields read are exactly the form type's
//! documented properties, so the OpenAPI document and the handler cannot disagree; unknown
//! fields are drained unread.

use axum::extract::multipart::{Field, Multipart, MultipartError, MultipartRejection};
use axum::http::StatusCode;
use futures::TryStreamExt;
use numcheck_engine::intake::{self, FileMeta, Intake, PreviewForm, TaskForm, Ticket};
use serde::de::DeserializeOwned;
use utoipa::openapi::{RefOr, Schema};

use crate::error::ApiError;
use crate::state::AppState;

/// Longest accepted value of a text form field.
const MAX_TEXT_FIELD: usize = 4096;

/// Reads and checks a create form: the upload streamed into the blob store, the fields into
/// one checked [`Intake`]. Nothing of a refused request is left behind.
pub async fn intake(
    state: &AppState,
    ticket: &Ticket,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Intake, ApiError> {
    let hint = "send the upload as multipart/form-data with fields file and task_type";
    let (mut multipart, mut fields) = open_form::<TaskForm>(multipart, hint)?;
    let engine = &state.engine;
    let mut file = None;
    let read: Result<(), ApiError> = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            if field.name() == Some("file") {
                let (meta, stream) = file_part(
                    field,
                    file.is_some(),
                    "send exactly one file field per task",
                )?;
                file = Some(intake::receive(engine, &ticket.id, meta, stream).await?);
            } else if let Some((name, value)) = fields.read(field).await?
                && name == "task_type"
            {
                // Refused early when the type comes before the file: no need to read it.
                intake::parse_task_type(Some(value))?;
            }
        }
        Ok(())
    }
    .await;
    let form = read.and_then(|()| fields.into_form::<TaskForm>());
    match form {
        Ok(mut form) => {
            form.file = file;
            Ok(intake::check(engine, ticket, form).await?)
        }
        Err(e) => {
            intake::discard(engine, file).await;
            Err(e)
        }
    }
}

/// Reads a preview form: the start of the file (a workbook whole), and its fields.
pub async fn preview_form(
    state: &AppState,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<PreviewForm, ApiError> {
    let hint = "send the file as multipart/form-data with a field named file";
    let (mut multipart, mut fields) = open_form::<PreviewForm>(multipart, hint)?;
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() == Some("file") {
            let (meta, stream) = file_part(field, file.is_some(), "send exactly one file field")?;
            file = Some(intake::receive_preview(&state.engine, meta, stream).await?);
        } else {
            fields.read(field).await?;
        }
    }
    let mut form: PreviewForm = fields.into_form()?;
    form.file = file;
    Ok(form)
}

/// The multipart body of a form of type `F` and the text fields to read from it, or the one
/// JSON rejection with `hint` on how to send the form.
fn open_form<F: utoipa::PartialSchema>(
    multipart: Result<Multipart, MultipartRejection>,
    hint: &str,
) -> Result<(Multipart, TextFields), ApiError> {
    let multipart = multipart
        .map_err(|e| ApiError::bad_request("invalid_multipart", format!("{hint} ({e})")))?;
    Ok((multipart, TextFields::of::<F>()))
}

/// A part's bytes as they arrive.
type PartStream<'a> = futures::stream::MapErr<Field<'a>, fn(MultipartError) -> ApiError>;

/// The `file` field's name and type, and its bytes as they arrive; a second file field (one
/// came already: `received`) is refused (`duplicate_file`, with `hint`).
fn file_part<'a>(
    field: Field<'a>,
    received: bool,
    hint: &'static str,
) -> Result<(FileMeta, PartStream<'a>), ApiError> {
    if received {
        return Err(ApiError::bad_request("duplicate_file", hint));
    }
    let meta = FileMeta {
        file_name: field.file_name().map(str::to_owned),
        content_type: field.content_type().map(str::to_owned),
    };
    Ok((meta, field.map_err(multipart_error as fn(_) -> _)))
}

/// The text fields of a form, read as they come; a field sent twice keeps its last value.
#[derive(Debug)]
struct TextFields {
    known: Vec<String>,
    values: serde_json::Map<String, serde_json::Value>,
}

impl TextFields {
    /// The text fields of form type `F`: its schema's properties but the file.
    fn of<F: utoipa::PartialSchema>() -> TextFields {
        let known = match F::schema() {
            RefOr::T(Schema::Object(object)) => object
                .properties
                .keys()
                .filter(|k| *k != "file")
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        TextFields {
            known,
            values: serde_json::Map::new(),
        }
    }

    /// Reads a field the form has (its name and value), or drains one it has not.
    async fn read(&mut self, field: Field<'_>) -> Result<Option<(&str, &str)>, ApiError> {
        let name = field.name().unwrap_or_default().to_owned();
        if !self.known.contains(&name) {
            drain(field).await?;
            return Ok(None);
        }
        let value = text_field(field).await?;
        self.values
            .insert(name.clone(), serde_json::Value::String(value));
        let (name, value) = self
            .values
            .get_key_value(&name)
            .and_then(|(k, v)| Some((k.as_str(), v.as_str()?)))
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a form field vanished")))?;
        Ok(Some((name, value)))
    }

    fn into_form<F: DeserializeOwned>(self) -> Result<F, ApiError> {
        serde_json::from_value(serde_json::Value::Object(self.values))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the form's fields: {e}")))
    }
}

/// A short text field, trimmed.
pub(crate) async fn text_field(mut field: Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_owned();
    let mut value = Vec::new();
    while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
        value.extend_from_slice(&bytes);
        if value.len() > MAX_TEXT_FIELD {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("the form field {name} is too long"),
            ));
        }
    }
    String::from_utf8(value)
        .map(|s| s.trim().to_owned())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_field",
                format!("the form field {name} is not UTF-8"),
            )
        })
}

async fn drain(mut field: Field<'_>) -> Result<(), ApiError> {
    while field.chunk().await.map_err(multipart_error)?.is_some() {}
    Ok(())
}

/// A broken or oversized multipart body.
pub(crate) fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The body limit sits just above the upload limit; the message names the latter.
        ApiError::TooLarge { limit: None }
    } else {
        ApiError::bad_request(
            "invalid_multipart",
            format!("the multipart body could not be read: {}", e.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_read_every_documented_text_field_and_not_the_file() {
        let task = TextFields::of::<TaskForm>().known;
        for name in [
            "task_type",
            "default_region",
            "columns",
            "formats",
            "live_lookup",
            "max_lookups",
            "max_age_days",
            "min_confidence",
            "callback_url",
            "phone_column",
            "sheet",
        ] {
            assert!(task.iter().any(|k| k == name), "{name} in {task:?}");
        }
        assert!(!task.iter().any(|k| k == "file"));
        let preview = TextFields::of::<PreviewForm>().known;
        assert_eq!(preview, ["phone_column", "sheet", "default_region"]);
    }
}

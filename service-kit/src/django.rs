//! Reading the JSON of Django's `manage.py dumpdata`, for the services' `import-django`
//! commands: the list of `{model, pk, fields}` records, and field readers whose errors name the
//! record and the field (`auth.user pk 7, field email: …`), so a bad record says where it is.

use std::{
    fmt,
    io::Read as _,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::{Map, Value};

/// One record of a dump.
#[derive(Debug, Deserialize)]
pub struct Record {
    /// `app_label.model`, lower case, as Django writes it.
    pub model: String,
    pub pk: Value,
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn reference(&self) -> RecordRef {
        RecordRef {
            model: self.model.clone(),
            pk: match &self.pk {
                Value::String(pk) => pk.clone(),
                other => other.to_string(),
            },
        }
    }

    /// The readers of this record's fields.
    pub fn fields<'a>(&'a self, reference: &'a RecordRef) -> Fields<'a> {
        Fields {
            record: reference,
            fields: &self.fields,
        }
    }

    /// The primary key as a positive integer id, as Django's default `AutoField` has it.
    pub fn integer_pk(&self, reference: &RecordRef) -> Result<i64, RecordError> {
        self.pk
            .as_i64()
            .filter(|id| *id > 0)
            .ok_or_else(|| RecordError::new(reference, "pk", "not a positive integer id"))
    }
}

/// A record named as Django names it: `auth.user pk 7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub model: String,
    pub pk: String,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} pk {}", self.model, self.pk)
    }
}

/// A record that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record}, field {field}: {message}")]
pub struct RecordError {
    pub record: RecordRef,
    pub field: String,
    pub message: String,
}

impl RecordError {
    pub fn new(record: &RecordRef, field: &str, message: impl Into<String>) -> Self {
        Self {
            record: record.clone(),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not JSON, truncated, or not a list of `{model, pk, fields}` records.
    #[error("{} is not the JSON of a dumpdata: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Reads the dump at `path`; `-` is standard input.
pub fn read_dump(path: &Path) -> Result<Vec<Record>, DumpError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text))
    };
    read.map_err(|source| DumpError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_dump(&text).map_err(|source| DumpError::Json {
        path: path.to_owned(),
        source,
    })
}

pub fn parse_dump(text: &str) -> Result<Vec<Record>, serde_json::Error> {
    serde_json::from_str(text)
}

/// A record's fields, read with errors that name the record and the field.
pub struct Fields<'a> {
    record: &'a RecordRef,
    fields: &'a Map<String, Value>,
}

impl Fields<'_> {
    pub fn has(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name).filter(|value| !value.is_null())
    }

    pub fn fail(&self, field: &str, message: impl Into<String>) -> RecordError {
        RecordError::new(self.record, field, message)
    }

    /// A validator's messages become the field's error.
    pub fn checked<T>(
        &self,
        field: &str,
        result: Result<T, Vec<String>>,
    ) -> Result<T, RecordError> {
        result.map_err(|messages| self.fail(field, messages.join(" ")))
    }

    pub fn text(&self, field: &str) -> Result<Option<String>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(self.fail(field, "expected text")),
        }
    }

    pub fn flag(&self, field: &str, default: bool) -> Result<bool, RecordError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err(self.fail(field, "expected true or false")),
        }
    }

    pub fn integer(&self, field: &str) -> Result<Option<i64>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.fail(field, "expected an integer")),
        }
    }

    /// A `DecimalField` as Django writes it (a string, `"19.90"`) or a number, as text.
    pub fn decimal(&self, field: &str) -> Result<Option<String>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(_) => Err(self.fail(field, "expected a decimal number")),
        }
    }

    /// A `DateTimeField` as unix microseconds. Django writes ISO 8601, in UTC with `Z` when
    /// `USE_TZ` is on and naive (read as UTC) when it is off.
    pub fn datetime(&self, field: &str) -> Result<Option<i64>, RecordError> {
        let Some(text) = self.text(field)? else {
            return Ok(None);
        };
        let timestamp: prost_types::Timestamp = text
            .parse()
            .map_err(|_| self.fail(field, format!("not an ISO 8601 date and time: {text:?}")))?;
        Ok(Some(
            timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos / 1_000),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: Value) -> Record {
        serde_json::from_value(serde_json::json!({"model": "app.thing", "pk": 7, "fields": fields}))
            .unwrap()
    }

    #[test]
    fn reads_djangos_datetimes_with_and_without_a_zone() {
        let record = record(serde_json::json!({
            "utc": "2023-03-01T09:15:30.123Z",
            "whole": "2023-03-02T10:00:00Z",
            "offset": "2023-03-01T10:15:30.123+01:00",
            "naive": "2023-03-01T09:15:30.123",
            "bad": "yesterday",
        }));
        let reference = record.reference();
        let fields = record.fields(&reference);
        assert_eq!(fields.datetime("utc").unwrap(), Some(1_677_662_130_123_000));
        assert_eq!(
            fields.datetime("whole").unwrap(),
            Some(1_677_751_200_000_000)
        );
        assert_eq!(
            fields.datetime("offset").unwrap(),
            Some(1_677_662_130_123_000)
        );
        assert_eq!(
            fields.datetime("naive").unwrap(),
            Some(1_677_662_130_123_000)
        );
        assert_eq!(fields.datetime("missing").unwrap(), None);
        assert_eq!(
            fields.datetime("bad").unwrap_err().to_string(),
            "app.thing pk 7, field bad: not an ISO 8601 date and time: \"yesterday\""
        );
    }

    #[test]
    fn decimals_keep_their_text() {
        let record = record(serde_json::json!({"price": "19.90", "float": 0.5, "no": true}));
        let reference = record.reference();
        let fields = record.fields(&reference);
        assert_eq!(fields.decimal("price").unwrap().as_deref(), Some("19.90"));
        assert_eq!(fields.decimal("float").unwrap().as_deref(), Some("0.5"));
        assert!(fields.decimal("no").is_err());
    }
}

//! A keyed write's answer: which outcomes are kept, how one is stored in the table's columns and
//! read back, and what a repeat of the request gets.

use prost::Message;
use proto::idempotency::{DOMAIN, REUSED};
use sqlx::Row;
use tonic::{Code, Status};

use super::REUSED_MESSAGE;
use crate::grpc;

/// Whether a call's error is the answer to its request (kept with the key and repeated), rather
/// than a failure of the service (not kept: nothing was written, so a retry may run afresh).
pub(super) fn decided_by_the_request(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unauthenticated
    )
}

/// What a keyed write answered.
pub(super) enum Answer {
    Response(Vec<u8>),
    Status(Status),
}

/// The answer columns: `response`, `status_code`, `status_message`, `status_details`.
type Columns = (
    Option<Vec<u8>>,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
);

impl Answer {
    pub(super) fn into_columns(self) -> Columns {
        match self {
            Self::Response(bytes) => (Some(bytes), None, None, None),
            Self::Status(status) => (
                None,
                Some(i64::from(i32::from(status.code()))),
                Some(status.message().to_owned()),
                Some(status.details().to_vec()),
            ),
        }
    }

    /// A stored row's fingerprint and answer.
    pub(super) fn from_row(
        row: &sqlx::any::AnyRow,
    ) -> Result<(Vec<u8>, Option<Self>), sqlx::Error> {
        let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
        let response: Option<Vec<u8>> = row.try_get("response")?;
        let code: Option<i64> = row.try_get("status_code")?;
        let answer = match (response, code) {
            (Some(bytes), _) => Some(Self::Response(bytes)),
            (None, Some(code)) => {
                let message: Option<String> = row.try_get("status_message")?;
                let details: Option<Vec<u8>> = row.try_get("status_details")?;
                Some(Self::Status(Status::with_details(
                    Code::from(i32::try_from(code).unwrap_or_default()),
                    message.unwrap_or_default(),
                    details.unwrap_or_default().into(),
                )))
            }
            (None, None) => None,
        };
        Ok((fingerprint, answer))
    }
}

/// What a repeat gets: the stored answer when the request is the same, else the refusal.
pub(super) fn replay<R: Message + Default>(
    (fingerprint, answer): (Vec<u8>, Option<Answer>),
    request: &[u8],
) -> Result<R, Status> {
    if fingerprint != request {
        return Err(grpc::with_reason(
            Code::FailedPrecondition,
            REUSED_MESSAGE,
            REUSED,
            DOMAIN,
        ));
    }
    match answer {
        Some(Answer::Response(bytes)) => R::decode(bytes.as_slice()).map_err(|err| {
            tracing::error!(%err, "a stored idempotent response does not decode");
            Status::internal("A server error occurred.")
        }),
        Some(Answer::Status(status)) => Err(status),
        // Never committed so: the answer is recorded in the reserving transaction.
        None => {
            tracing::error!("an idempotency key without an answer");
            Err(Status::internal("A server error occurred."))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn a_stored_status_replays_whole() {
        let refused = grpc::with_reason(
            Code::FailedPrecondition,
            "Insufficient stock.",
            "INSUFFICIENT_STOCK",
            "inventory.v1",
        );
        let (response, code, message, details) = Answer::Status(refused).into_columns();
        assert_eq!(response, None);
        let stored = Status::with_details(
            Code::from(i32::try_from(code.unwrap()).unwrap()),
            message.unwrap(),
            details.unwrap().into(),
        );
        let replayed = replay::<()>((vec![1], Some(Answer::Status(stored))), &[1]).unwrap_err();
        assert_eq!(replayed.code(), Code::FailedPrecondition);
        assert_eq!(replayed.message(), "Insufficient stock.");
        let info = replayed.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "INSUFFICIENT_STOCK");

        let reused = replay::<()>((vec![1], None), &[2]).unwrap_err();
        assert_eq!(reused.code(), Code::FailedPrecondition);
        let info = reused.get_error_details().error_info().cloned().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            (REUSED, DOMAIN)
        );
    }

    #[test]
    fn only_the_requests_own_errors_are_kept() {
        assert!(decided_by_the_request(Code::FailedPrecondition));
        assert!(decided_by_the_request(Code::NotFound));
        assert!(!decided_by_the_request(Code::Unavailable));
        assert!(!decided_by_the_request(Code::Internal));
        assert!(!decided_by_the_request(Code::Cancelled));
    }
}

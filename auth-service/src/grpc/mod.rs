//! The `auth.v1.AuthService` handlers: each parses its request into domain types ([`parse`],
//! collecting every field error at once), authenticates the caller from the `authorization`
//! metadata where the RPC needs one, calls [`Accounts`], and translates the answer back
//! ([`convert`]). The admin writes (CreateUser, UpdateUser, DeleteUser) run through
//! [`Accounts::writes`], which applies one carrying an `idempotency-key` once.

use std::future::Future;

use proto::{
    auth::v1::{self as pb, auth_service_server},
    credentials,
};
use service_kit::{idempotency::Keyed, validation::FieldErrors};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    domain::{Principal, audit::Origin},
    error::AuthError,
    service::{Accounts, LoginAnswer, LoginOutcome},
};

mod convert;
mod parse;
mod peers;
mod recovery;

pub(crate) use convert::user_to_proto;
use convert::{audit_event_to_proto, issued_to_proto, kind_from_proto, kind_to_proto};
use parse::{AccountParts, parsed};
pub use peers::Peers;

pub struct AuthApi {
    accounts: Accounts,
    /// Whose `x-client-address` is believed, and who may hold a verdict cache.
    peers: Peers,
}

impl AuthApi {
    pub fn new(accounts: Accounts, peers: Peers) -> Self {
        Self { accounts, peers }
    }

    /// The caller, from `authorization: Token|Bearer|Session <key>`. Any other scheme is no
    /// credential at all, as in DRF.
    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, AuthError> {
        let (kind, key) = credentials::of_metadata(request.metadata())?;
        let origin = self.origin(request);
        self.accounts
            .validate(key, kind_from_proto(kind), &origin)
            .await
    }

    /// Where a call comes from, for the audit trail: the client as [`Peers`] believes it, and
    /// the request id (which the request-id layer puts on every call).
    fn origin<T>(&self, request: &Request<T>) -> Origin {
        let request_id = request
            .metadata()
            .get(service_kit::request_id::HEADER)
            .and_then(|id| id.to_str().ok())
            .map(str::to_owned);
        Origin {
            client: self.peers.client_address(request),
            request_id,
        }
    }

    /// The caller ([`AuthApi::principal`]) and what it asks.
    async fn caller<T>(&self, request: Request<T>) -> Result<(Principal, T), AuthError> {
        let principal = self.principal(&request).await?;
        Ok((principal, request.into_inner()))
    }
}

type Reply<T> = Result<Response<T>, Status>;

impl AuthApi {
    /// Register's dry run: every field error, duplicates included, or OK with nothing created.
    async fn check_registration(
        &self,
        mut errors: FieldErrors,
        account: &AccountParts,
    ) -> Reply<pb::RegisterResponse> {
        let duplicates = self
            .accounts
            .duplicates(account.username.as_ref(), account.email.as_ref())
            .await?;
        for (field, message) in duplicates.iter() {
            errors.add(field, message);
        }
        errors.into_result().map_err(AuthError::from)?;
        Ok(Response::new(pb::RegisterResponse::default()))
    }

    /// Awaits an admin write of user `id` ([`Accounts::writes`]) and, once it has committed,
    /// has the verdict caches drop what they hold of that user.
    async fn changing_user<R>(&self, id: i64, write: impl Future<Output = Reply<R>>) -> Reply<R> {
        let written = write.await?;
        self.accounts.user_changed(id).await;
        Ok(written)
    }
}

#[tonic::async_trait]
impl auth_service_server::AuthService for AuthApi {
    type WatchRevocationsStream = ReceiverStream<Result<pb::RevocationEvent, Status>>;

    /// A verdict cache's stream of revocations; [`crate::revocations`] serves it.
    #[tracing::instrument(skip_all)]
    async fn watch_revocations(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Reply<Self::WatchRevocationsStream> {
        self.peers.may_hold(&request)?;
        // Small: a holder that does not read its events should not have many queued for it.
        let (out, events) = tokio::sync::mpsc::channel(16);
        let hub = self.accounts.revocations().clone();
        tokio::spawn(hub.serve_holder(request.into_inner(), out));
        Ok(Response::new(ReceiverStream::new(events)))
    }

    #[tracing::instrument(skip_all)]
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Reply<pb::RegisterResponse> {
        let origin = self.origin(&request);
        let request = request.into_inner();
        let (validate_only, issue_token) = (request.validate_only, request.issue_token);
        let (errors, account) = parse::registration(request);
        if validate_only {
            return self.check_registration(errors, &account).await;
        }
        let account = parsed(errors, account.complete())?;
        let outcome = self
            .accounts
            .register(account, issue_token, &origin)
            .await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_to_proto(outcome.user)),
            token: outcome.token.map(issued_to_proto),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let origin = self.origin(&request);
        let login = parse::login(request.into_inner(), origin)?;
        let response = match self.accounts.login(login).await? {
            LoginAnswer::Admitted(outcome) => login_to_proto(outcome, None),
            LoginAnswer::SecondFactor(challenge) => pb::LoginResponse {
                mfa_challenge: Some(challenge.expose().to_owned()),
                ..pb::LoginResponse::default()
            },
        };
        Ok(Response::new(response))
    }

    // The hot path: its span is for debugging, the request's own span says it happened.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Reply<pb::ValidateTokenResponse> {
        let origin = self.origin(&request);
        let request = request.into_inner();
        let kind = kind_from_proto(request.kind());
        let principal = self.accounts.validate(&request.key, kind, &origin).await?;
        Ok(Response::new(pb::ValidateTokenResponse {
            kind: kind_to_proto(principal.kind).into(),
            expires_at: Some(principal.expires_at.to_proto()),
            user: Some(user_to_proto(principal.user)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Reply<pb::RefreshTokenResponse> {
        let origin = self.origin(&request);
        let (principal, pb::RefreshTokenRequest {}) = self.caller(request).await?;
        let issued = self.accounts.refresh(&principal, &origin).await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            token: Some(issued_to_proto(issued)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Reply<pb::RevokeTokenResponse> {
        let origin = self.origin(&request);
        let (principal, pb::RevokeTokenRequest {}) = self.caller(request).await?;
        self.accounts.revoke(&principal, &origin).await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_all_tokens(
        &self,
        request: Request<pb::RevokeAllTokensRequest>,
    ) -> Reply<pb::RevokeAllTokensResponse> {
        let origin = self.origin(&request);
        let (principal, pb::RevokeAllTokensRequest {}) = self.caller(request).await?;
        let revoked = self.accounts.revoke_all(&principal, &origin).await?;
        Ok(Response::new(pb::RevokeAllTokensResponse { revoked }))
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Reply<pb::ChangePasswordResponse> {
        let origin = self.origin(&request);
        let (principal, request) = self.caller(request).await?;
        let (old, new) = parse::password_change(request)?;
        self.accounts
            .change_password(&principal, &origin, old, new)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Reply<pb::User> {
        let (principal, pb::GetCurrentUserRequest {}) = self.caller(request).await?;
        Ok(Response::new(user_to_proto(principal.user)))
    }

    #[tracing::instrument(skip_all)]
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::User> {
        let principal = self.principal(&request).await?;
        let keyed = Keyed::of(&request, principal.user.id, "CreateUser")?;
        let origin = self.origin(&request);
        let account = parse::new_user(request.into_inner())?;
        let creation = self
            .accounts
            .prepare_user_creation(&principal, account, &origin)
            .await?;
        let created = self.accounts.writes().run(keyed, move |connection| {
            Box::pin(async move {
                Accounts::create_user_on(connection, creation)
                    .await
                    .map(user_to_proto)
            })
        });
        created.await
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Reply<pb::User> {
        let (principal, pb::GetUserRequest { id }) = self.caller(request).await?;
        let user = self.accounts.user(&principal, id).await?;
        Ok(Response::new(user_to_proto(user)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        let (principal, pb::ListUsersRequest { limit, offset }) = self.caller(request).await?;
        let limit = limit.map_or(proto::MAX_PAGE_SIZE, |limit| {
            limit.min(proto::MAX_PAGE_SIZE)
        });
        let (users, total_count) = self.accounts.list_users(&principal, limit, offset).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_to_proto).collect(),
            total_count,
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Reply<pb::User> {
        let principal = self.principal(&request).await?;
        let keyed = Keyed::of(&request, principal.user.id, "UpdateUser")?;
        let id = request.get_ref().id;
        let origin = self.origin(&request);
        let changes = parse::account_changes(request.into_inner())?;
        let update = self
            .accounts
            .prepare_user_update(&principal, id, changes, &origin)
            .await?;
        let accounts = self.accounts.clone();
        let updated = self.accounts.writes().run(keyed, move |connection| {
            Box::pin(async move {
                accounts
                    .update_user_on(connection, update)
                    .await
                    .map(user_to_proto)
            })
        });
        let updated = self.changing_user(id, updated).await;
        // A new email's verification message, if the update enqueued one.
        self.accounts.outbox().committed();
        updated
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Reply<pb::DeleteUserResponse> {
        let principal = self.principal(&request).await?;
        let keyed = Keyed::of(&request, principal.user.id, "DeleteUser")?;
        let id = request.get_ref().id;
        let origin = self.origin(&request);
        let (may_delete_superuser, event) =
            self.accounts.prepare_user_deletion(&principal, &origin)?;
        let deleted = self.accounts.writes().run(keyed, move |connection| {
            Box::pin(async move {
                Accounts::delete_user_on(connection, id, may_delete_superuser, event).await?;
                Ok::<_, AuthError>(pb::DeleteUserResponse {})
            })
        });
        self.changing_user(id, deleted).await
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Reply<pb::RequestPasswordResetResponse> {
        self.serve_password_reset_request(request).await
    }

    async fn confirm_password_reset(
        &self,
        request: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Reply<pb::ConfirmPasswordResetResponse> {
        self.serve_password_reset_confirm(request).await
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Reply<pb::VerifyEmailResponse> {
        self.serve_email_verification(request).await
    }

    async fn resend_email_verification(
        &self,
        request: Request<pb::ResendEmailVerificationRequest>,
    ) -> Reply<pb::ResendEmailVerificationResponse> {
        self.serve_verification_resend(request).await
    }

    #[tracing::instrument(skip_all)]
    async fn begin_totp_enrolment(
        &self,
        request: Request<pb::BeginTotpEnrolmentRequest>,
    ) -> Reply<pb::BeginTotpEnrolmentResponse> {
        let (principal, pb::BeginTotpEnrolmentRequest {}) = self.caller(request).await?;
        let enrolment = self.accounts.begin_totp_enrolment(&principal).await?;
        Ok(Response::new(pb::BeginTotpEnrolmentResponse {
            secret: enrolment.secret.base32().to_owned(),
            otpauth_url: enrolment.otpauth_url,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_totp_enrolment(
        &self,
        request: Request<pb::ConfirmTotpEnrolmentRequest>,
    ) -> Reply<pb::ConfirmTotpEnrolmentResponse> {
        let origin = self.origin(&request);
        let (principal, pb::ConfirmTotpEnrolmentRequest { code }) = self.caller(request).await?;
        let code = parse::factor_code(code)?;
        let recovery_codes = self
            .accounts
            .confirm_totp_enrolment(&principal, &origin, &code)
            .await?;
        Ok(Response::new(pb::ConfirmTotpEnrolmentResponse {
            recovery_codes,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Reply<pb::DisableTotpResponse> {
        let origin = self.origin(&request);
        let (principal, request) = self.caller(request).await?;
        let proof = parse::disable_proof(request)?;
        self.accounts
            .disable_totp(&principal, &origin, proof)
            .await?;
        Ok(Response::new(pb::DisableTotpResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_mfa_login(
        &self,
        request: Request<pb::CompleteMfaLoginRequest>,
    ) -> Reply<pb::LoginResponse> {
        let origin = self.origin(&request);
        let completion = parse::mfa_completion(request.into_inner(), origin)?;
        let (outcome, route) = self.accounts.complete_mfa_login(completion).await?;
        Ok(Response::new(login_to_proto(outcome, Some(route))))
    }

    #[tracing::instrument(skip_all, fields(user_id = request.get_ref().id))]
    async fn reset_second_factor(
        &self,
        request: Request<pb::ResetSecondFactorRequest>,
    ) -> Reply<pb::ResetSecondFactorResponse> {
        let origin = self.origin(&request);
        let (principal, pb::ResetSecondFactorRequest { id }) = self.caller(request).await?;
        self.accounts
            .reset_second_factor(&principal, id, &origin)
            .await?;
        Ok(Response::new(pb::ResetSecondFactorResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        let (principal, request) = self.caller(request).await?;
        let (filter, limit, offset) = parse::audit_filter(request)?;
        let (events, total_count) = self
            .accounts
            .audit_events(&principal, &filter, limit, offset)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: events.into_iter().map(audit_event_to_proto).collect(),
            total_count,
        }))
    }
}

/// A login's credentials, and the route name it was asked with if it took a second step.
fn login_to_proto(outcome: LoginOutcome, route: Option<String>) -> pb::LoginResponse {
    let LoginOutcome {
        user,
        token,
        session,
    } = outcome;
    pb::LoginResponse {
        token: Some(issued_to_proto(token)),
        session: session.map(issued_to_proto),
        user: Some(user_to_proto(user)),
        mfa_challenge: None,
        route,
    }
}

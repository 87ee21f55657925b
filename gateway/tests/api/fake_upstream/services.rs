//! The fake's two gRPC services: one [`Method`] constant per method, and the trait
//! implementations, each of which records its call and answers as scripted (see `Fake::call`),
//! or else by the unscripted rule here.

use proto::{
    auth::v1::{self as auth, auth_service_server::AuthService},
    credentials::{self, CredentialsRefused},
    inventory::v1::{self as inventory, inventory_service_server::InventoryService},
    reasons,
};
use service_kit::grpc::with_reason;
use tonic::{Code, Request, Response, Status, Streaming, codegen::tokio_stream};

use super::{Fake, Method, Received, State};

type Reply<T> = Result<Response<T>, Status>;

pub const REGISTER: Method<auth::RegisterRequest, auth::RegisterResponse> = Method::new("Register");
pub const LOGIN: Method<auth::LoginRequest, auth::LoginResponse> = Method::new("Login");
pub const VALIDATE_TOKEN: Method<auth::ValidateTokenRequest, auth::ValidateTokenResponse> =
    Method::new("ValidateToken");
pub const REFRESH_TOKEN: Method<auth::RefreshTokenRequest, auth::RefreshTokenResponse> =
    Method::new("RefreshToken");
pub const REVOKE_TOKEN: Method<auth::RevokeTokenRequest, auth::RevokeTokenResponse> =
    Method::new("RevokeToken");
pub const REVOKE_ALL_TOKENS: Method<auth::RevokeAllTokensRequest, auth::RevokeAllTokensResponse> =
    Method::new("RevokeAllTokens");
pub const CHANGE_PASSWORD: Method<auth::ChangePasswordRequest, auth::ChangePasswordResponse> =
    Method::new("ChangePassword");
pub const GET_CURRENT_USER: Method<auth::GetCurrentUserRequest, auth::User> =
    Method::new("GetCurrentUser");
pub const CREATE_USER: Method<auth::CreateUserRequest, auth::User> = Method::new("CreateUser");
pub const GET_USER: Method<auth::GetUserRequest, auth::User> = Method::new("GetUser");
pub const LIST_USERS: Method<auth::ListUsersRequest, auth::ListUsersResponse> =
    Method::new("ListUsers");
pub const UPDATE_USER: Method<auth::UpdateUserRequest, auth::User> = Method::new("UpdateUser");
pub const DELETE_USER: Method<auth::DeleteUserRequest, auth::DeleteUserResponse> =
    Method::new("DeleteUser");
pub const REQUEST_PASSWORD_RESET: Method<
    auth::RequestPasswordResetRequest,
    auth::RequestPasswordResetResponse,
> = Method::new("RequestPasswordReset");
pub const CONFIRM_PASSWORD_RESET: Method<
    auth::ConfirmPasswordResetRequest,
    auth::ConfirmPasswordResetResponse,
> = Method::new("ConfirmPasswordReset");
pub const VERIFY_EMAIL: Method<auth::VerifyEmailRequest, auth::VerifyEmailResponse> =
    Method::new("VerifyEmail");
pub const RESEND_EMAIL_VERIFICATION: Method<
    auth::ResendEmailVerificationRequest,
    auth::ResendEmailVerificationResponse,
> = Method::new("ResendEmailVerification");
pub const BEGIN_TOTP_ENROLMENT: Method<
    auth::BeginTotpEnrolmentRequest,
    auth::BeginTotpEnrolmentResponse,
> = Method::new("BeginTotpEnrolment");
pub const CONFIRM_TOTP_ENROLMENT: Method<
    auth::ConfirmTotpEnrolmentRequest,
    auth::ConfirmTotpEnrolmentResponse,
> = Method::new("ConfirmTotpEnrolment");
pub const DISABLE_TOTP: Method<auth::DisableTotpRequest, auth::DisableTotpResponse> =
    Method::new("DisableTotp");
pub const COMPLETE_MFA_LOGIN: Method<auth::CompleteMfaLoginRequest, auth::LoginResponse> =
    Method::new("CompleteMfaLogin");
pub const RESET_SECOND_FACTOR: Method<
    auth::ResetSecondFactorRequest,
    auth::ResetSecondFactorResponse,
> = Method::new("ResetSecondFactor");
pub const LIST_AUDIT_EVENTS: Method<auth::ListAuditEventsRequest, auth::ListAuditEventsResponse> =
    Method::new("ListAuditEvents");

pub const CREATE_PRODUCT: Method<inventory::CreateProductRequest, inventory::Product> =
    Method::new("CreateProduct");
pub const GET_PRODUCT: Method<inventory::GetProductRequest, inventory::Product> =
    Method::new("GetProduct");
pub const LIST_PRODUCTS: Method<inventory::ListProductsRequest, inventory::ListProductsResponse> =
    Method::new("ListProducts");
pub const UPDATE_PRODUCT: Method<inventory::UpdateProductRequest, inventory::Product> =
    Method::new("UpdateProduct");
pub const DELETE_PRODUCT: Method<
    inventory::DeleteProductRequest,
    inventory::DeleteProductResponse,
> = Method::new("DeleteProduct");
pub const ADJUST_STOCK: Method<inventory::AdjustStockRequest, inventory::Product> =
    Method::new("AdjustStock");

/// What the fake answers a method it was given no answer for, and has no rule of its own.
fn unimplemented<Request, Reply>(_: &State, _: &Received<Request>) -> Result<Reply, Status> {
    Err(Status::unimplemented("the fake was given no answer"))
}

/// The auth service's refusal of a credential, with its reason.
fn unauthenticated(reason: &str) -> Status {
    with_reason(Code::Unauthenticated, "refused", reason, reasons::DOMAIN)
}

/// The user the token `key` stands for, or auth's TOKEN_INVALID.
fn user_of(state: &State, key: &str) -> Result<auth::User, Status> {
    let user = state.users.get(key).cloned();
    user.ok_or_else(|| unauthenticated(reasons::TOKEN_INVALID))
}

/// Both services of one [`Fake`].
#[derive(Clone)]
pub(super) struct Api(pub(super) Fake);

#[tonic::async_trait]
impl AuthService for Api {
    type WatchRevocationsStream = tokio_stream::Empty<Result<auth::RevocationEvent, Status>>;

    /// Never scripted: the gateway's verdict cache keeps asking, and so caches nothing.
    async fn watch_revocations(
        &self,
        _request: Request<Streaming<auth::WatchRequest>>,
    ) -> Reply<Self::WatchRevocationsStream> {
        Err(Status::unimplemented("the fake has no revocations"))
    }

    async fn register(
        &self,
        request: Request<auth::RegisterRequest>,
    ) -> Reply<auth::RegisterResponse> {
        self.0.call(REGISTER, request, unimplemented)
    }

    async fn login(&self, request: Request<auth::LoginRequest>) -> Reply<auth::LoginResponse> {
        self.0.call(LOGIN, request, unimplemented)
    }

    async fn validate_token(
        &self,
        request: Request<auth::ValidateTokenRequest>,
    ) -> Reply<auth::ValidateTokenResponse> {
        self.0.call(VALIDATE_TOKEN, request, |state, call| {
            Ok(auth::ValidateTokenResponse {
                user: Some(user_of(state, &call.message.key)?),
                kind: call.message.kind,
                expires_at: None,
            })
        })
    }

    async fn refresh_token(
        &self,
        request: Request<auth::RefreshTokenRequest>,
    ) -> Reply<auth::RefreshTokenResponse> {
        self.0.call(REFRESH_TOKEN, request, unimplemented)
    }

    async fn revoke_token(
        &self,
        request: Request<auth::RevokeTokenRequest>,
    ) -> Reply<auth::RevokeTokenResponse> {
        self.0.call(REVOKE_TOKEN, request, unimplemented)
    }

    async fn revoke_all_tokens(
        &self,
        request: Request<auth::RevokeAllTokensRequest>,
    ) -> Reply<auth::RevokeAllTokensResponse> {
        self.0.call(REVOKE_ALL_TOKENS, request, unimplemented)
    }

    async fn change_password(
        &self,
        request: Request<auth::ChangePasswordRequest>,
    ) -> Reply<auth::ChangePasswordResponse> {
        self.0.call(CHANGE_PASSWORD, request, unimplemented)
    }

    /// The user of the `authorization` metadata's key, refused as auth refuses it.
    async fn get_current_user(
        &self,
        request: Request<auth::GetCurrentUserRequest>,
    ) -> Reply<auth::User> {
        self.0.call(
            GET_CURRENT_USER,
            request,
            |state, call| match credentials::of_metadata(&call.metadata) {
                Ok((_, key)) => user_of(state, key),
                Err(CredentialsRefused::Missing) => {
                    Err(unauthenticated(reasons::CREDENTIALS_MISSING))
                }
                Err(CredentialsRefused::Malformed) => Err(unauthenticated(reasons::TOKEN_INVALID)),
            },
        )
    }

    async fn create_user(&self, request: Request<auth::CreateUserRequest>) -> Reply<auth::User> {
        self.0.call(CREATE_USER, request, unimplemented)
    }

    async fn get_user(&self, request: Request<auth::GetUserRequest>) -> Reply<auth::User> {
        self.0.call(GET_USER, request, unimplemented)
    }

    async fn list_users(
        &self,
        request: Request<auth::ListUsersRequest>,
    ) -> Reply<auth::ListUsersResponse> {
        self.0.call(LIST_USERS, request, unimplemented)
    }

    async fn update_user(&self, request: Request<auth::UpdateUserRequest>) -> Reply<auth::User> {
        self.0.call(UPDATE_USER, request, unimplemented)
    }

    async fn delete_user(
        &self,
        request: Request<auth::DeleteUserRequest>,
    ) -> Reply<auth::DeleteUserResponse> {
        self.0.call(DELETE_USER, request, unimplemented)
    }

    async fn request_password_reset(
        &self,
        request: Request<auth::RequestPasswordResetRequest>,
    ) -> Reply<auth::RequestPasswordResetResponse> {
        self.0.call(REQUEST_PASSWORD_RESET, request, unimplemented)
    }

    async fn confirm_password_reset(
        &self,
        request: Request<auth::ConfirmPasswordResetRequest>,
    ) -> Reply<auth::ConfirmPasswordResetResponse> {
        self.0.call(CONFIRM_PASSWORD_RESET, request, unimplemented)
    }

    async fn verify_email(
        &self,
        request: Request<auth::VerifyEmailRequest>,
    ) -> Reply<auth::VerifyEmailResponse> {
        self.0.call(VERIFY_EMAIL, request, unimplemented)
    }

    async fn resend_email_verification(
        &self,
        request: Request<auth::ResendEmailVerificationRequest>,
    ) -> Reply<auth::ResendEmailVerificationResponse> {
        self.0
            .call(RESEND_EMAIL_VERIFICATION, request, unimplemented)
    }

    async fn begin_totp_enrolment(
        &self,
        request: Request<auth::BeginTotpEnrolmentRequest>,
    ) -> Reply<auth::BeginTotpEnrolmentResponse> {
        self.0.call(BEGIN_TOTP_ENROLMENT, request, unimplemented)
    }

    async fn confirm_totp_enrolment(
        &self,
        request: Request<auth::ConfirmTotpEnrolmentRequest>,
    ) -> Reply<auth::ConfirmTotpEnrolmentResponse> {
        self.0.call(CONFIRM_TOTP_ENROLMENT, request, unimplemented)
    }

    async fn disable_totp(
        &self,
        request: Request<auth::DisableTotpRequest>,
    ) -> Reply<auth::DisableTotpResponse> {
        self.0.call(DISABLE_TOTP, request, unimplemented)
    }

    async fn complete_mfa_login(
        &self,
        request: Request<auth::CompleteMfaLoginRequest>,
    ) -> Reply<auth::LoginResponse> {
        self.0.call(COMPLETE_MFA_LOGIN, request, unimplemented)
    }

    async fn reset_second_factor(
        &self,
        request: Request<auth::ResetSecondFactorRequest>,
    ) -> Reply<auth::ResetSecondFactorResponse> {
        self.0.call(RESET_SECOND_FACTOR, request, unimplemented)
    }

    async fn list_audit_events(
        &self,
        request: Request<auth::ListAuditEventsRequest>,
    ) -> Reply<auth::ListAuditEventsResponse> {
        self.0.call(LIST_AUDIT_EVENTS, request, unimplemented)
    }
}

#[tonic::async_trait]
impl InventoryService for Api {
    async fn create_product(
        &self,
        request: Request<inventory::CreateProductRequest>,
    ) -> Reply<inventory::Product> {
        self.0.call(CREATE_PRODUCT, request, unimplemented)
    }

    /// The product with the id, or NOT_FOUND.
    async fn get_product(
        &self,
        request: Request<inventory::GetProductRequest>,
    ) -> Reply<inventory::Product> {
        self.0.call(GET_PRODUCT, request, |state, call| {
            let found = state.products.iter().find(|p| p.id == call.message.id);
            found
                .cloned()
                .ok_or_else(|| Status::not_found("no such product"))
        })
    }

    /// The products from the offset, at most the limit (1000 without one), counted unless
    /// asked not to.
    async fn list_products(
        &self,
        request: Request<inventory::ListProductsRequest>,
    ) -> Reply<inventory::ListProductsResponse> {
        self.0.call(LIST_PRODUCTS, request, |state, call| {
            let all = &state.products;
            let limit = call.message.limit.unwrap_or(proto::MAX_PAGE_SIZE);
            let from = usize::try_from(call.message.offset).unwrap().min(all.len());
            let to = from
                .saturating_add(usize::try_from(limit).unwrap())
                .min(all.len());
            let total = if call.message.skip_total_count {
                0
            } else {
                all.len() as u64
            };
            Ok(inventory::ListProductsResponse {
                products: all[from..to].to_vec(),
                total_count: total,
                more: to < all.len(),
            })
        })
    }

    async fn update_product(
        &self,
        request: Request<inventory::UpdateProductRequest>,
    ) -> Reply<inventory::Product> {
        self.0.call(UPDATE_PRODUCT, request, unimplemented)
    }

    async fn delete_product(
        &self,
        request: Request<inventory::DeleteProductRequest>,
    ) -> Reply<inventory::DeleteProductResponse> {
        self.0.call(DELETE_PRODUCT, request, unimplemented)
    }

    async fn adjust_stock(
        &self,
        request: Request<inventory::AdjustStockRequest>,
    ) -> Reply<inventory::Product> {
        self.0.call(ADJUST_STOCK, request, unimplemented)
    }
}

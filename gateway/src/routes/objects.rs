//! What the routes of every kind of object a service keeps by id share (DRF's `ModelViewSet`,
//! for products and users): their operations, one handler to read an object and one to delete
//! it. A kind says which calls reach its objects ([`Kept`]) and brings its own list, create and
//! update handlers, which read different bodies.

use std::future::Future;

use axum::{extract::State, handler::Handler, response::IntoResponse};
use http::{Method, StatusCode};
use tonic::Status;

use super::{AppState, Endpoint, Written};
use crate::{
    clients::Upstreams,
    error::{ApiError, Backend},
    extract::{Authenticated, ObjectId},
    openapi::{Content, Field, Operation, Schema},
    shapes,
};

/// What the module of each kind (products, users) names: the view set's parts, and the
/// extractors and errors its own handlers take and give.
pub(super) mod prelude {
    pub(in crate::routes) use super::{Bodies, Kept, Reply, Summaries};
    pub(in crate::routes) use crate::{
        clients::Upstreams,
        error::{ApiError, Backend},
        extract::{Authenticated, Fields, ObjectId, Paging},
        routes::{Endpoint, Written, pages},
    };
}

/// A service's answer to one call.
pub(super) type Reply<M> = Result<tonic::Response<M>, Status>;

/// A kind of object a service keeps by id, and the calls that reach one.
pub(super) trait Kept: 'static {
    /// The service's message for one object.
    type Object;
    /// An object as a route shows it.
    type Body: IntoResponse;
    /// The service's answer to a delete (which says nothing more).
    type Deleted;
    /// The service that keeps them (its NOT_FOUND is "no such object").
    const BACKEND: Backend;

    fn show(object: Self::Object) -> Self::Body;

    /// The schema of what [`Self::show`] writes.
    fn schema() -> Schema;

    /// The service's read of the object a request names.
    fn get(
        upstreams: &Upstreams,
        request: tonic::Request<i64>,
    ) -> impl Future<Output = Reply<Self::Object>> + Send;

    /// The service's delete of the object a request names.
    fn delete(
        upstreams: &Upstreams,
        request: tonic::Request<i64>,
    ) -> impl Future<Output = Reply<Self::Deleted>> + Send;
}

/// GET of one object.
pub(super) async fn retrieve<K: Kept>(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
) -> Result<K::Body, ApiError> {
    let object = K::get(&upstreams, caller.request(id))
        .await
        .map_err(|status| ApiError::from_status(K::BACKEND, &status))?;
    Ok(K::show(object.into_inner()))
}

/// DELETE of one object: 204 No Content.
pub(super) async fn destroy<K: Kept>(
    State(upstreams): State<Upstreams>,
    Authenticated(caller): Authenticated,
    ObjectId(id): ObjectId,
) -> Result<Written<StatusCode>, ApiError> {
    let deleted = K::delete(&upstreams, caller.write_request(id))
        .await
        .map_err(|status| ApiError::from_status(K::BACKEND, &status))?;
    Ok(Written::of(deleted, |_| StatusCode::NO_CONTENT))
}

/// What a kind's operations are called in the schema.
pub(super) struct Summaries {
    pub list: &'static str,
    pub create: &'static str,
    pub retrieve: &'static str,
    /// PUT, DRF's full update.
    pub replace: &'static str,
    /// PATCH, DRF's partial update.
    pub update: &'static str,
    pub destroy: &'static str,
}

/// The bodies a kind's writes read: the fields of each, and which each requires.
pub(super) struct Bodies {
    pub create: &'static [Field],
    /// PUT, DRF's full update.
    pub replace: &'static [Field],
    /// PATCH, DRF's partial update.
    pub update: &'static [Field],
}

/// The routes of DRF's `ModelViewSet` over `kind`, for callers with credentials only: list and
/// create at `collection`; read, PUT, PATCH and delete at `detail` (`collection{id}/`), in that
/// order. Create, PUT and PATCH read `bodies`, and every write takes an `Idempotency-Key`;
/// `update` serves PUT and PATCH both, telling them apart by the method where they differ.
/// Lists are [`shapes::page_schema`] of the kind's objects, the others answer one object.
pub(super) fn model_view_set<K, L, TL, C, TC, U, TU>(
    _kind: K,
    [collection, detail]: [&'static str; 2],
    bodies: &Bodies,
    summaries: &Summaries,
    (list, create, update): (L, C, U),
) -> [Endpoint; 6]
where
    K: Kept,
    L: Handler<TL, AppState>,
    C: Handler<TC, AppState>,
    U: Handler<TU, AppState>,
    TL: 'static,
    TC: 'static,
    TU: 'static,
{
    let read = |path, summary, schema| {
        Operation::new(Method::GET, path, summary, 200, schema).authenticated()
    };
    let write = |method, path, summary, fields: &'static [Field], success| {
        Operation::new(method, path, summary, success, K::schema())
            .body(fields.iter().copied())
            .authenticated()
            .idempotent()
    };
    let list_schema = shapes::page_schema(K::schema());
    [
        Endpoint::new(read(collection, summaries.list, list_schema), list),
        Endpoint::new(
            write(
                Method::POST,
                collection,
                summaries.create,
                bodies.create,
                201,
            ),
            create,
        ),
        Endpoint::new(read(detail, summaries.retrieve, K::schema()), retrieve::<K>),
        Endpoint::new(
            write(Method::PUT, detail, summaries.replace, bodies.replace, 200),
            update.clone(),
        ),
        Endpoint::new(
            write(Method::PATCH, detail, summaries.update, bodies.update, 200),
            update,
        ),
        Endpoint::new(
            write(Method::DELETE, detail, summaries.destroy, &[], 204).answering(Content::Empty),
            destroy::<K>,
        ),
    ]
}

//! The HTTP API. Handlers validate input, call the [`crate::store`]
//! through [`run_blocking`] (diesel blocks; tokio's workers must not), and
//! turn the result into a response. No handler sees a connection.
//!
//! | route | does |
//! |---|---|
//! | `POST /items` `{"name", "qty"}` | 201 and the item; 409 if the name exists |
//! | `GET /items/{id}` | the item, from a replica that has this user's writes; header `x-db-server` |
//! | `POST /items/{id}/restock` | adds one to `qty`, returns the item |

use axum::extract::Path;
use axum::http::{HeaderName, StatusCode};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use diesel::PgConnection;
use diesel_facade::{run_blocking, Facade};

use crate::context::{self, RequestContext};
use crate::error::ApiError;
use crate::store::{self, Item, NewItem};

/// Which server answered a read: `primary` or `replica`.
pub static DB_SERVER: HeaderName = HeaderName::from_static("x-db-server");

/// The service's routes, with the request-context middleware around them.
pub fn router(db: Facade<PgConnection>) -> Router {
    Router::new()
        .route("/items", post(create_item))
        .route("/items/{id}", get(get_item))
        .route("/items/{id}/restock", post(restock))
        .layer(middleware::from_fn_with_state(db, context::request_context))
}

async fn create_item(
    ctx: RequestContext,
    Json(new): Json<NewItem>,
) -> Result<(StatusCode, Json<Item>), ApiError> {
    if new.name.is_empty() || new.name.chars().count() > 64 {
        return Err(ApiError::Invalid("name must be 1 to 64 characters"));
    }
    if new.qty < 0 {
        return Err(ApiError::Invalid("qty must not be negative"));
    }
    let (_ctx, item) = run_blocking(ctx, move |ctx| store::create_item(ctx, &new)).await;
    Ok((StatusCode::CREATED, Json(item?)))
}

async fn get_item(
    ctx: RequestContext,
    Path(id): Path<i32>,
) -> Result<([(HeaderName, &'static str); 1], Json<Item>), ApiError> {
    let (_ctx, read) = run_blocking(ctx, move |ctx| store::get_item(ctx, id)).await;
    let (item, server) = read?;
    let item = item.ok_or(ApiError::NotFound)?;
    Ok(([(DB_SERVER.clone(), server.as_str())], Json(item)))
}

async fn restock(ctx: RequestContext, Path(id): Path<i32>) -> Result<Json<Item>, ApiError> {
    let (_ctx, item) = run_blocking(ctx, move |ctx| store::restock(ctx, id)).await;
    Ok(Json(item?))
}

//! A product as the API shows it: DRF's field order, `price` as the exact decimal string the
//! service sent.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use proto::inventory::v1::Product;
use serde::Serialize;

use super::rfc3339;
use crate::openapi::Schema;

/// One product as a response.
#[derive(Debug)]
pub struct ProductBody(pub Product);

impl ProductBody {
    /// The schema of [`ProductFields`], field for field, a component of the document.
    pub fn schema() -> Schema {
        Schema::named(
            "Product",
            Schema::object([
                ("id", Schema::integer()),
                ("name", Schema::string()),
                ("description", Schema::string()),
                ("price", Schema::decimal_text()),
                ("quantity", Schema::integer()),
                ("created_at", Schema::date_time().nullable()),
                ("updated_at", Schema::date_time().nullable()),
            ]),
        )
    }
}

impl IntoResponse for ProductBody {
    fn into_response(self) -> Response {
        Json(ProductFields::of(&self.0)).into_response()
    }
}

/// `products`' objects, joined by commas: one reply's part of a list's `[...]`.
pub(super) fn joined(products: &[Product]) -> Vec<u8> {
    let mut json = Vec::new();
    for (i, product) in products.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        serde_json::to_writer(&mut json, &ProductFields::of(product))
            .expect("a product always serializes");
    }
    json
}

/// A product's fields in DRF's order (serde writes a struct's fields as declared).
#[derive(Serialize)]
struct ProductFields<'a> {
    id: i64,
    name: &'a str,
    description: &'a str,
    price: &'a str,
    quantity: i64,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl<'a> ProductFields<'a> {
    /// Taken apart, so that a field added to the message must be placed here; the numbers are
    /// copied, the text borrowed.
    fn of(product: &'a Product) -> Self {
        let &Product {
            id,
            ref name,
            ref description,
            ref price,
            quantity,
            ref created_at,
            ref updated_at,
        } = product;
        Self {
            id,
            name,
            description,
            price,
            quantity,
            created_at: rfc3339(created_at.as_ref()),
            updated_at: rfc3339(updated_at.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields in DRF's order, `price` as sent, timestamps in RFC 3339 or `null`.
    #[test]
    fn a_product_is_written_in_its_declared_order() {
        let widget = Product {
            id: 7,
            name: "Widget".to_owned(),
            description: "A \"small\" one".to_owned(),
            price: "19.99".to_owned(),
            quantity: 3,
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000,
            }),
            updated_at: None,
        };
        assert_eq!(
            String::from_utf8(joined(std::slice::from_ref(&widget))).unwrap(),
            r#"{"id":7,"name":"Widget","description":"A \"small\" one","price":"19.99","quantity":3,"created_at":"2023-11-14T22:13:20.000005Z","updated_at":null}"#
        );
    }

    /// The schema names every field written, in order, and admits what is written.
    #[test]
    fn a_product_is_written_as_its_schema_says() {
        let widget = Product {
            created_at: Some(prost_types::Timestamp::default()),
            ..Product::default()
        };
        let written: serde_json::Value =
            serde_json::from_slice(&joined(std::slice::from_ref(&widget))).unwrap();
        assert_eq!(ProductBody::schema().admits(&written), Ok(()));
        let Schema::Named(_, schema) = ProductBody::schema() else {
            panic!("a component");
        };
        let Schema::Object { properties, .. } = &*schema else {
            panic!("an object");
        };
        let declared: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
        let keys: Vec<&str> = written
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(declared, keys);
    }
}

//! The requests that make and change a product, parsed into the field types of [`super`]
//! with every field's complaint at once.

use proto::inventory::v1 as pb;
use service_kit::validation::{self, FieldErrors, Messages};

use super::{Price, ProductName, Quantity, complaint};

/// A product about to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: ProductName,
    /// DRF's `CharField(allow_blank=True)`: trimmed, may be empty (the default).
    pub description: String,
    pub price: Price,
    pub quantity: Quantity,
}

/// Name and price are required; description defaults to `""` and quantity to 0. The request
/// is taken apart field by field, so a field added to the message does not compile until it
/// is parsed here.
impl TryFrom<pb::CreateProductRequest> for NewProduct {
    type Error = FieldErrors;

    fn try_from(request: pb::CreateProductRequest) -> Result<Self, FieldErrors> {
        let pb::CreateProductRequest {
            name,
            description,
            price,
            quantity,
        } = request;
        let description = Some(description.unwrap_or_default());
        let (given, errors) =
            ProductChanges::parse(name, description, price, Some(quantity.unwrap_or(0)), true);
        match given {
            ProductChanges {
                name: Some(name),
                description: Some(description),
                price: Some(price),
                quantity: Some(quantity),
            } if errors.is_empty() => Ok(Self {
                name,
                description,
                price,
                quantity,
            }),
            _ => Err(errors),
        }
    }
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChanges {
    pub name: Option<ProductName>,
    pub description: Option<String>,
    pub price: Option<Price>,
    pub quantity: Option<Quantity>,
}

impl ProductChanges {
    /// The fields a write gives, each parsed (with DRF's messages, in DRF's field order, for
    /// a create as for an update); a field left out stays `None`, but for name and price when
    /// `required`: those are "required" errors.
    fn parse(
        name: Option<String>,
        description: Option<String>,
        price: Option<String>,
        quantity: Option<i64>,
        required: bool,
    ) -> (Self, FieldErrors) {
        let mut errors = FieldErrors::new();
        let changes = Self {
            name: given(&mut errors, "name", name, required, |raw| {
                ProductName::parse(Some(raw))
            }),
            description: given(&mut errors, "description", description, false, |raw| {
                validation::optional_text(&raw)
            }),
            price: given(&mut errors, "price", price, required, |raw| {
                Price::parse(&raw)
            }),
            quantity: given(&mut errors, "quantity", quantity, false, Quantity::parse),
        };
        (changes, errors)
    }
}

/// `raw` parsed, what is wrong with it recorded under `field`; when it is missing, `None`, or
/// DRF's "required" error when `required`.
fn given<R, T>(
    errors: &mut FieldErrors,
    field: &str,
    raw: Option<R>,
    required: bool,
    parse: impl FnOnce(R) -> Result<T, Messages>,
) -> Option<T> {
    match raw {
        Some(raw) => errors.check(field, parse(raw)),
        None if required => errors.check(field, Err(complaint(validation::REQUIRED))),
        None => None,
    }
}

/// The fields the request sets, checked; which product is the handler's concern.
impl TryFrom<pb::UpdateProductRequest> for ProductChanges {
    type Error = FieldErrors;

    fn try_from(request: pb::UpdateProductRequest) -> Result<Self, FieldErrors> {
        let pb::UpdateProductRequest {
            id: _,
            name,
            description,
            price,
            quantity,
        } = request;
        let (changes, errors) = Self::parse(name, description, price, quantity, false);
        errors.into_result().map(|()| changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NEGATIVE;

    fn new_product(
        name: Option<&str>,
        description: Option<&str>,
        price: Option<&str>,
        quantity: Option<i64>,
    ) -> Result<NewProduct, FieldErrors> {
        NewProduct::try_from(pb::CreateProductRequest {
            name: name.map(str::to_owned),
            description: description.map(str::to_owned),
            price: price.map(str::to_owned),
            quantity,
        })
    }

    fn changes(
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<ProductChanges, FieldErrors> {
        ProductChanges::try_from(pb::UpdateProductRequest {
            id: 1,
            name: name.map(str::to_owned),
            description: description.map(str::to_owned),
            price: None,
            quantity: None,
        })
    }

    #[test]
    fn nul_characters_are_refused_in_names_and_descriptions() {
        let nul = validation::NULL_CHARACTERS;
        let errors = new_product(Some("Wid\0get"), Some("a\0b"), Some("1"), None).unwrap_err();
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            [("name", nul), ("description", nul)]
        );
        let errors = changes(None, Some("\0")).unwrap_err();
        assert_eq!(errors.iter().collect::<Vec<_>>(), [("description", nul)]);
    }

    #[test]
    fn a_new_product_reports_every_field() {
        let errors = new_product(None, None, Some("1.001"), Some(-3)).unwrap_err();
        let errors: Vec<_> = errors.iter().collect();
        assert_eq!(
            errors,
            [
                ("name", validation::REQUIRED),
                (
                    "price",
                    "Ensure that there are no more than 2 decimal places."
                ),
                ("quantity", NEGATIVE),
            ]
        );
    }

    #[test]
    fn a_new_product_takes_defaults() {
        let product = new_product(Some("Pen"), None, Some("1.5"), None).unwrap();
        assert_eq!(product.description, "");
        assert_eq!(product.quantity, Quantity::parse(0).unwrap());
        assert_eq!(product.price.cents(), 150);
    }

    #[test]
    fn changes_check_only_what_is_set() {
        assert_eq!(changes(None, None), Ok(ProductChanges::default()));
        let errors = changes(Some(""), None).unwrap_err();
        assert_eq!(
            errors.iter().collect::<Vec<_>>(),
            [("name", validation::BLANK)]
        );
    }
}

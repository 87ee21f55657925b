//! `inventory-service import-django FILE [--model app.product]`: products from the JSON of
//! Django's `manage.py dumpdata`, with their ids and exact prices. Every record is checked with
//! the same rules as CreateProduct before the database is touched; the store writes them all in
//! one transaction, so a bad record names itself and nothing is written. The command returns
//! once no running server's product cache can answer without the imported products.

use std::{collections::BTreeSet, path::PathBuf, time::SystemTime};

use proto::inventory::v1::CreateProductRequest;
use service_kit::{
    database::DatabaseError,
    django::{self, DumpError, Record, RecordError},
    time::UnixMicros,
};

use crate::{
    cache::{self, CacheError},
    config::Config,
    domain::NewProduct,
    store::{ImportRefused, ImportReport, ImportedProduct, ProductStore},
};

/// `import-django`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ImportDjangoArgs {
    /// The JSON written by `manage.py dumpdata app.product`; `-` reads standard input.
    pub file: PathBuf,
    /// The model to import (`app_label.model`). Without it, the records whose fields have a
    /// `name` and a `price`, if they are of one model.
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("{0} (nothing was imported)")]
    Record(#[from] RecordError),
    #[error("records of several models look like products ({}): name one with --model", .0.join(", "))]
    SeveralModels(Vec<String>),
    #[error("the file has no records of {0}")]
    NoRecords(String),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("the products were imported, but the servers' caches could not be told: {0}")]
    Cache(#[from] CacheError),
    #[error("the import failed and nothing was written: {0}")]
    Store(sqlx::Error),
}

impl From<ImportRefused> for ImportError {
    fn from(refused: ImportRefused) -> Self {
        match refused {
            ImportRefused::IdHeld(record) => Self::Record(record),
            ImportRefused::Database(err) => Self::Store(err),
        }
    }
}

/// The `import-django` command; the error is a message for the console.
pub async fn import_django_command(config: &Config, args: &ImportDjangoArgs) -> Result<(), String> {
    let report = import_django_file(config, &args.file, args.model.as_deref())
        .await
        .map_err(|err| err.to_string())?;
    println!(
        "Imported {} products; skipped {} already there.",
        report.imported, report.skipped
    );
    Ok(())
}

/// Reads, checks and imports a dump file (`-`: standard input) in one transaction, into the
/// database of `config`, created and migrated as the server does.
pub async fn import_django_file(
    config: &Config,
    path: &std::path::Path,
    model: Option<&str>,
) -> Result<ImportReport, ImportError> {
    let products = check_dump(django::read_dump(path)?, model)?;
    let url = config.database_url.as_str();
    let store = ProductStore::connect(url).await?;
    let report = store.import(&products, SystemTime::now()).await?;
    if report.imported > 0 {
        // Servers running beside this command answer with the imported products once it
        // returns, as after any write.
        cache::settle_console_writes(url, config.product_cache).await?;
    }
    Ok(report)
}

/// The products of `records`: those of `model`, or else those whose fields have a `name` and a
/// `price` (which must then be of one model).
pub fn check_dump(
    records: Vec<Record>,
    model: Option<&str>,
) -> Result<Vec<ImportedProduct>, ImportError> {
    let wanted = model.map(str::to_lowercase);
    let chosen: Vec<Record> = records
        .into_iter()
        .filter(|record| match &wanted {
            Some(model) => record.model == *model,
            None => record.fields.contains_key("name") && record.fields.contains_key("price"),
        })
        .collect();
    let models: BTreeSet<&str> = chosen.iter().map(|record| record.model.as_str()).collect();
    match (&wanted, models.len()) {
        (Some(model), 0) => return Err(ImportError::NoRecords(model.clone())),
        (None, 0) => return Err(ImportError::NoRecords("a product model".to_owned())),
        (None, 2..) => {
            return Err(ImportError::SeveralModels(
                models.into_iter().map(str::to_owned).collect(),
            ));
        }
        _ => {}
    }
    Ok(chosen.iter().map(check_product).collect::<Result<_, _>>()?)
}

fn check_product(record: &Record) -> Result<ImportedProduct, RecordError> {
    let source = record.reference();
    let fields = record.fields(&source);
    let id = record.integer_pk(&source)?;
    // The five DRF apps this replaces call the stock `quantity` or `stock`.
    let stock_field = if fields.has("quantity") {
        "quantity"
    } else {
        "stock"
    };
    let product = NewProduct::try_from(CreateProductRequest {
        name: fields.text("name")?,
        description: fields.text("description")?,
        price: fields.decimal("price")?,
        quantity: fields.integer(stock_field)?,
    })
    .map_err(|errors| {
        let (field, message) = errors.iter().next().unwrap_or(("name", "invalid"));
        let field = if field == "quantity" {
            stock_field
        } else {
            field
        };
        fields.fail(field, message)
    })?;
    let time = |field: &str| {
        fields
            .datetime(field)
            .map(|micros| micros.map(|micros| UnixMicros(micros).to_system_time()))
    };
    Ok(ImportedProduct {
        id,
        product,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCTS: &str = include_str!("../tests/fixtures/django/products.json");
    const SHOP_ITEMS: &str = include_str!("../tests/fixtures/django/shop_items.json");

    fn check(text: &str, model: Option<&str>) -> Result<Vec<ImportedProduct>, ImportError> {
        check_dump(django::parse_dump(text).unwrap(), model)
    }

    #[test]
    fn keeps_ids_and_exact_prices() {
        let products = check(PRODUCTS, None).unwrap();
        let summary: Vec<_> = products
            .iter()
            .map(|p| (p.id, p.product.price.to_string()))
            .collect();
        assert_eq!(summary.len(), 4);
        assert!(summary.contains(&(1, "19.99".to_owned())), "{summary:?}");
    }

    #[test]
    fn stock_is_quantity_and_a_negative_one_names_its_record() {
        let err = check(SHOP_ITEMS, Some("shop.item"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "shop.item pk 3, field stock: Ensure this value is greater than or equal to 0. \
             (nothing was imported)"
        );
    }

    #[test]
    fn several_product_models_need_a_choice() {
        let both = format!(
            "{},{}",
            PRODUCTS.trim().trim_end_matches(']'),
            SHOP_ITEMS.trim().trim_start_matches('[')
        );
        let err = check(&both, None).unwrap_err().to_string();
        assert!(err.contains("inventory.product, shop.item"), "{err}");
        assert_eq!(check(&both, Some("inventory.product")).unwrap().len(), 4);
        let err = check(PRODUCTS, Some("shop.widget"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "the file has no records of shop.widget");
    }

    #[test]
    fn a_models_own_timestamps_are_kept() {
        let text = r#"[{"model": "a.p", "pk": 1, "fields": {"name": "x", "price": "1",
                        "created_at": "2023-03-01T09:15:30.123Z", "updated_at": null}}]"#;
        let product = check(text, None).unwrap().remove(0);
        let created = product.created_at.unwrap();
        let micros = created
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        assert_eq!(micros, 1_677_662_130_123_000);
        assert_eq!(product.updated_at, None, "then the creation time");
    }

    #[test]
    fn a_price_django_could_not_hold_is_refused() {
        let text = r#"[{"model": "a.p", "pk": 1, "fields": {"name": "x", "price": "1.999"}}]"#;
        let err = check(text, None).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "a.p pk 1, field price: Ensure that there are no more than 2 decimal places."
            ),
            "{err}"
        );
    }
}

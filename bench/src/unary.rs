//! Scenarios 2 and 3, driven by h2load: auth's `ValidateToken` of a valid key against a bare
//! tonic server's unary `grpc.health.v1.Health/Check` (`h2load -c32 -m8`), and inventory's
//! `GetProduct` through its auth layer (the binary) against the same handlers on the same
//! database without the layer (`baseline::serve_inventory_without_auth_layer`, `-c4 -m8`).

use proto::{
    auth::v1::{CredentialKind, ValidateTokenRequest},
    inventory::v1::GetProductRequest,
};
use tonic_health::pb::HealthCheckRequest;

use crate::{
    baseline::Baselines,
    drive::{self, Load},
    grpc::GrpcRequest,
    report::Report,
    stack::Stack,
    tools::Tools,
};

/// ValidateToken's load: connections, and streams on each.
const VALIDATE: (usize, usize) = (32, 8);
/// GetProduct's: a few connections, as a gateway or a replica pool holds.
const GET_PRODUCT: (usize, usize) = (4, 8);

const VALIDATE_PATH: &str = "/auth.v1.AuthService/ValidateToken";
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
const GET_PRODUCT_PATH: &str = "/inventory.v1.InventoryService/GetProduct";

/// Which of the two scenarios to run.
pub struct Wanted {
    pub validate: bool,
    pub inventory: bool,
}

pub async fn run(
    stack: &Stack,
    baselines: &Baselines,
    tools: &Tools,
    wanted: Wanted,
    report: &mut Report,
) -> Result<(), String> {
    let load = |request: GrpcRequest, (connections, streams): (usize, usize)| Load::Grpc {
        request,
        connections,
        streams,
    };
    if wanted.validate {
        let validate = GrpcRequest::new(
            stack.auth.addr(),
            VALIDATE_PATH,
            &ValidateTokenRequest {
                key: stack.admin_key.clone(),
                kind: CredentialKind::Token.into(),
            },
        );
        let empty = GrpcRequest::new(baselines.grpc, CHECK_PATH, &HealthCheckRequest::default());
        stack.auth.reset_peak();
        let summaries = drive::in_turns(
            tools,
            &[
                load(validate, VALIDATE).into(),
                load(empty, VALIDATE).into(),
            ],
        )
        .await?;
        let (validate, empty) = (summaries[0], summaries[1]);
        report.heading(&format!(
            "2. ValidateToken of a valid key, {} connections x {} streams",
            VALIDATE.0, VALIDATE.1
        ));
        report.table(&[
            ("auth ValidateToken", validate),
            ("empty tonic unary (health Check)", empty),
        ]);
        report.rate(
            "2 validate",
            ("ValidateToken", validate),
            ("empty tonic unary", empty),
            0.90,
        );
        report.memory(&[&stack.auth]);
    }
    if wanted.inventory {
        let get_product = |addr| {
            GrpcRequest::new(
                addr,
                GET_PRODUCT_PATH,
                &GetProductRequest {
                    id: stack.product_id,
                },
            )
            .authorized(&stack.admin_key)
        };
        for service in stack.services() {
            service.reset_peak();
        }
        let summaries = drive::in_turns(
            tools,
            &[
                load(get_product(stack.inventory.addr()), GET_PRODUCT).into(),
                load(get_product(baselines.inventory), GET_PRODUCT).into(),
            ],
        )
        .await?;
        let (through_layer, without_layer) = (summaries[0], summaries[1]);
        report.heading(&format!(
            "3. GetProduct with and without the auth layer, {} connections x {} streams",
            GET_PRODUCT.0, GET_PRODUCT.1
        ));
        report.table(&[
            (
                "inventory GetProduct, through the auth layer",
                through_layer,
            ),
            ("the same handlers without the layer", without_layer),
        ]);
        report.rate(
            "3 get product",
            ("through the auth layer", through_layer),
            ("without", without_layer),
            0.90,
        );
        report.memory(&[&stack.inventory, &stack.auth]);
    }
    Ok(())
}

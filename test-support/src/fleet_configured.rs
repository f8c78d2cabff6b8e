//! A fleet whose backends are not all alike: tests of moves, evacuation
//! and expiry start each backend with a config of their own.

use common::config::{AuxConfig, BackendConfig};

use crate::aux::{aux_config, start_aux_ready};
use crate::backend::start_backend;
use crate::fleet::TestFleet;

impl TestFleet {
    /// A backend for each of `configs`, and aux-srv in front of them with
    /// [`aux_config`] changed by `adjust`, ready.
    pub async fn start_configured(
        configs: impl IntoIterator<Item = BackendConfig>,
        adjust: impl FnOnce(AuxConfig) -> AuxConfig,
    ) -> TestFleet {
        let backends = futures_util::future::join_all(configs.into_iter().map(start_backend)).await;
        let aux = start_aux_ready(adjust(aux_config(&backends.iter().collect::<Vec<_>>()))).await;
        TestFleet { backends, aux }
    }
}

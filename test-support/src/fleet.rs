//! A fleet in one test process: backends and an aux-srv in front of them,
//! ready to place rooms.

use common::config::AuxConfig;

use crate::aux::{TestAux, aux_config, start_aux_ready};
use crate::backend::{TestBackend, backend_config, start_backend};

pub struct TestFleet {
    pub backends: Vec<TestBackend>,
    pub aux: TestAux,
}

impl TestFleet {
    /// Backends with these ids and aux-srv with [`aux_config`], ready.
    pub async fn start(ids: &[&str]) -> TestFleet {
        TestFleet::start_with(ids, |config| config).await
    }

    /// [`TestFleet::start`], aux-srv's config changed by `adjust` first.
    pub async fn start_with(
        ids: &[&str],
        adjust: impl FnOnce(AuxConfig) -> AuxConfig,
    ) -> TestFleet {
        let mut backends = Vec::new();
        for id in ids {
            backends.push(start_backend(backend_config(id)).await);
        }
        let config = adjust(aux_config(&backends.iter().collect::<Vec<_>>()));
        let aux = start_aux_ready(config).await;
        TestFleet { backends, aux }
    }
}

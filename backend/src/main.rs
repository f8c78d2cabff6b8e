//! The `backend` binary: [`startup::serve`] around [`backend::run`].

use common::config::BackendConfig;

fn main() -> std::process::ExitCode {
    startup::serve(
        "backend",
        "Holds instantchat rooms in RAM and serves their websockets.",
        |config: BackendConfig| async move {
            let listeners = backend::Listeners {
                public: startup::bind(config.listen, "listen").await?,
                control: startup::bind(config.control_listen, "control_listen").await?,
            };
            backend::run(listeners, config, startup::shutdown_signal()).await
        },
    )
}

//! The `aux-srv` binary: [`startup::serve`] around [`aux_srv::run`].

use common::config::AuxConfig;

fn main() -> std::process::ExitCode {
    startup::serve(
        "aux-srv",
        "instantchat's coordinator: web pages, public API, room placement, admin API.",
        |config: AuxConfig| async move {
            let listeners = aux_srv::Listeners {
                public: startup::bind(config.listen, "listen").await?,
                admin: startup::bind(config.admin_listen, "admin_listen").await?,
            };
            aux_srv::run(listeners, config, startup::shutdown_signal()).await
        },
    )
}

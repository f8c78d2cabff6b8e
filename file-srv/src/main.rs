//! The `file-srv` binary: [`startup::serve`] around [`file_srv::run`].

use common::config::FileSrvConfig;

fn main() -> std::process::ExitCode {
    startup::serve(
        "file-srv",
        "Stores and serves instantchat's drawings and link-preview images.",
        |config: FileSrvConfig| async move {
            let listener = startup::bind(config.listen, "listen").await?;
            file_srv::run(listener, config, startup::shutdown_signal()).await
        },
    )
}

//! layerstack's BuildKit frontend: reads stack.toml through the gateway, plans and converts it
//! with llb-gen, solves, and always answers with exactly one `Return`.

use std::process::ExitCode;

use layerstack_frontend::gateway::Gateway;
use layerstack_frontend::{build, request};

fn main() -> ExitCode {
    // BuildKit runs the frontend without arguments; `--version` is for people and release checks.
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("layerstack-frontend {}", llb_gen::version::VERSION);
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("layerstack: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run())
}

async fn run() -> ExitCode {
    let gw = match Gateway::connect().await {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("layerstack: cannot reach BuildKit's gateway on stdio: {e}");
            return ExitCode::from(1);
        }
    };
    // Any panic inside the build becomes an error Return rather than a silent exit.
    let outcome = tokio::task::spawn({
        let gw = gw.clone();
        async move { build::build(&gw).await }
    })
    .await
    .unwrap_or_else(|e| {
        Err(request::Failure::plain(format!(
            "layerstack frontend bug: {e}"
        )))
    });
    let sent = match outcome {
        Ok(result) => gw.return_result(result).await,
        Err(f) => gw.return_error(&f.message, f.details).await,
    };
    match sent {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layerstack: Return failed: {e}");
            ExitCode::from(1)
        }
    }
}

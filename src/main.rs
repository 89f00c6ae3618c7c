//! The `gantry` command: `serve` (default), `migrate`, `schema`, `admin grant EMAIL`.

use clap::{Parser, Subcommand};

use gantry::app::{App, AppOptions};
use gantry::config::Config;

/// mimalloc: the request path allocates many small, short-lived objects (profiled: glibc malloc and
/// free were ~11 % of the CPU time of an authenticated request).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "gantry", version, about = "Self-hosted, GraphQL-first developer platform server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default): GraphQL, subscriptions, REST, playground.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Make a registered user a platform administrator.
    Grant {
        /// The user's email address.
        email: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", gantry::graphql::sdl());
        return std::process::ExitCode::SUCCESS;
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gantry: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    gantry::init_tracing(&config);
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("gantry: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = App::build(config, AppOptions::default()).await?;
            gantry::server::serve(app).await
        }
        Command::Migrate => {
            App::build(config, AppOptions::default()).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { command: AdminCommand::Grant { email } } => {
            let app = App::build(config, AppOptions::default()).await?;
            let user = gantry::accounts::service::grant_admin(&app, &email)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
            println!("{} ({}) is now a platform administrator", user.email, user.id);
            Ok(())
        }
        Command::Schema => Ok(()),
    }
}

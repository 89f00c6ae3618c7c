//! The `gantry` command: `serve` (default), `worker`, `migrate`, `schema`, `admin grant|revoke EMAIL`.

use clap::{Parser, Subcommand};

use gantry::app::AppOptions;
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
    /// Run the server (the default): GraphQL, subscriptions, REST, playground, and the webhook workers.
    Serve {
        /// Also run the webhook dispatcher and delivery workers in this process.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        workers: bool,
    },
    /// Run only the webhook dispatcher and delivery workers (scale them apart from the API).
    Worker,
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
    /// End a user's platform administration (the last administrator keeps it).
    Revoke {
        /// The user's email address.
        email: String,
    },
}

/// Allocator settings, set once at start (an explicit `MIMALLOC_*` variable still decides):
/// - Freed memory goes back to the OS after 10 s unused rather than mimalloc's 1 s: the request
///   path's worker threads otherwise return and re-fault the same pages every few seconds
///   (profiled: page clearing in the kernel and first-touch faults, ~5 % of a request). The few
///   jobs that allocate megabytes at once on a blocking thread give theirs back when they finish
///   (`platform::memory`).
/// - No transparent huge pages: with them every touched 2 MiB of the heap stays resident whole,
///   and a partly freed one is never returned — the resident set grew with the requests served
///   (~95 MiB after 250k requests, ~190 MiB after 900k) while the memory in use stayed flat; the
///   resident set after load is in `BENCHMARKS.md` (measured by `benches/load.sh`).
fn tune_allocator() {
    // Indexes in mimalloc.h's `mi_option_e` (libmimalloc-sys names no constants for them).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; mimalloc reads options atomically.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // mimalloc reads this option when it maps new memory; the arena it mapped before `main`
        // is covered by the process-wide switch below.
        // SAFETY: as above.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process's memory map.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tune_allocator();
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
    match run(cli.command.unwrap_or(Command::Serve { workers: true }), config).await {
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
        Command::Serve { workers } => {
            let mut config = config;
            config.workers &= workers;
            let listener = gantry::server::bind(&config).await?;
            let app = gantry::server::build(config, AppOptions::default()).await?;
            gantry::server::serve(listener, app).await
        }
        Command::Worker => {
            let app = gantry::server::build(config, AppOptions::default()).await?;
            gantry::server::work(app).await
        }
        Command::Migrate => {
            gantry::server::build(config, AppOptions::default()).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { command } => {
            let (email, grant) = match command {
                AdminCommand::Grant { email } => (email, true),
                AdminCommand::Revoke { email } => (email, false),
            };
            let app = gantry::server::build(config, AppOptions::default()).await?;
            let fail = |e: gantry::error::Error| anyhow::anyhow!("{}", e.public_message());
            let user = gantry::admin::service::user_by_email(&app, &email).await.map_err(fail)?;
            let user = gantry::admin::service::set_platform_admin(&app, None, &user, grant).await.map_err(fail)?;
            let done = if grant { "is now a platform administrator" } else { "is no longer a platform administrator" };
            println!("{} ({}) {done}", user.email, user.id);
            Ok(())
        }
        Command::Schema => Ok(()),
    }
}

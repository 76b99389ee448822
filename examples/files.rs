//! Files both ways: a photo or a document someone sends is fetched
//! (`getFile`, then its bytes under a 20 MB cap) and answered with its size;
//! a document is also saved to disk and sent back from there, and `/cat`
//! uploads a picture compiled into the bot, from bytes.
//!
//! ```sh
//! TELEGRAM_BOT_TOKEN=123456:ABC… cargo run --example files
//! ```
//!
//! Documents go to `$FILES_INBOX` (default: the temp directory), named by
//! their `file_unique_id`, never by the name the sender gave them.

use std::path::PathBuf;
use std::process::ExitCode;

use smolgram::api::Upload;
use smolgram::{Bot, Context, Error, HandlerResult};

/// The most a download may be: the Bot API serves files up to 20 MB.
pub const CAP: u64 = 20_000_000;
/// What `/cat` sends: a 128×128 PNG.
pub const CAT: &[u8] = include_bytes!("cat.png");

pub fn bot(inbox: PathBuf) -> Bot {
    Bot::new()
        .command("cat", |ctx| async move {
            ctx.reply_photo(Upload::bytes("cat.png", CAT)).await?;
            Ok(())
        })
        .photo(|ctx| async move {
            // Telegram sends a photo in several sizes, the largest last.
            let Some(photo) = ctx.message().and_then(|m| m.photo.as_ref()?.last()) else {
                return Ok(());
            };
            let file = ctx.client().get_file(&photo.file_id).await?;
            let bytes = match ctx.client().download(&file, Vec::new(), CAP).await {
                Ok(bytes) => bytes,
                Err(e) => return refused(&ctx, e).await,
            };
            let (w, h, len) = (photo.width, photo.height, bytes.len());
            ctx.reply(format!("photo {w}×{h}: {len} bytes")).await?;
            Ok(())
        })
        .document(move |ctx| {
            let inbox = inbox.clone();
            async move {
                let Some(doc) = ctx.message().and_then(|m| m.document.as_deref()) else {
                    return Ok(());
                };
                let file = ctx.client().get_file(&doc.file_id).await?;
                let path = inbox.join(&doc.file_unique_id);
                let len = match ctx.client().download_to(&file, &path, CAP).await {
                    Ok(len) => len,
                    Err(e) => return refused(&ctx, e).await,
                };
                let name = doc.file_name.as_deref().unwrap_or("file");
                ctx.reply(format!("{name}: {len} bytes; here it is back"))
                    .await?;
                // Streamed from the disk, under the name it came with.
                let back = Upload::path(path).file_name(name);
                ctx.reply_document(back).await?;
                Ok(())
            }
        })
}

/// Answers a download the cap refused; any other error fails the handler.
async fn refused(ctx: &Context, e: Error) -> HandlerResult {
    let Error::TooLarge { cap, .. } = e else {
        return Err(e.into());
    };
    ctx.reply(format!("too big: I take files up to {cap} bytes"))
        .await?;
    Ok(())
}

fn main() -> ExitCode {
    let config = match smolgram::config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("files: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    smolgram::init_logging(&config.log_filter);
    let inbox = std::env::var_os("FILES_INBOX").map_or_else(std::env::temp_dir, PathBuf::from);
    if let Err(e) = std::fs::create_dir_all(&inbox) {
        eprintln!("files: {}: {e}", inbox.display());
        return ExitCode::FAILURE;
    }
    match smolgram::run(bot(inbox), &config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

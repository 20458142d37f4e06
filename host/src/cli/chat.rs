//! `hermes chat`.

use std::io::{BufRead, IsTerminal, Read};
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;

use super::Ctx;
use crate::auth::{Store, TokenSource};
use crate::catalog;
use crate::chat::{ChatClient, ChatReply, ChatRequest, Message};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::plugins::runtime::PluginSet;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The prompt; `-` reads it from stdin. Without it, every line of stdin is one turn.
    #[arg(short = 'q', long = "query")]
    query: Option<String>,
    /// Provider id or alias (default: model.provider in config.yaml).
    #[arg(long)]
    provider: Option<String>,
    /// Model (default: model.default in config.yaml, else the provider's first).
    #[arg(long)]
    model: Option<String>,
    /// Most tokens in the answer (default: 4096, or the model's maximum if lower).
    #[arg(long)]
    max_tokens: Option<u64>,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Wait for the whole answer and print it as JSON.
    #[arg(long)]
    json: bool,
    /// The login to use (number, id or label).
    #[arg(long)]
    account: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let paths = ctx.env.paths();
    let settings = Settings::load(&paths)?;
    // Names, models and defaults come from the descriptors recorded at install; only the
    // plugin of the chosen provider is loaded.
    let mut set = PluginSet::described(&paths)?;
    let provider_name = match (
        &args.provider,
        args.model
            .as_deref()
            .and_then(|m| catalog::provider_of(&set.registry, m)),
    ) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.to_string(),
        (None, None) => match settings.model_provider() {
            Some(p) => p,
            // Without a configured default, the provider signed in to last.
            None => Store::new(&paths)
                .read()?
                .active_provider()
                .filter(|p| set.registry.resolve(p).is_some())
                .map(String::from)
                .ok_or_else(|| {
                    Error::usage(
                        "no provider chosen",
                        "pass --provider, or choose a default with `hermes model`",
                    )
                })?,
        },
    };
    let entry = set.resolve(&provider_name)?.clone();
    let d = entry.provider.clone();
    let model = match &args.model {
        Some(m) => catalog::normalize(&set.registry, &d.id, m),
        None => settings
            .model_default()
            .filter(|_| {
                settings.model_provider().is_some_and(|p| {
                    set.registry
                        .resolve(&p)
                        .is_some_and(|e| e.provider.id == d.id)
                })
            })
            .map(|m| catalog::normalize(&set.registry, &d.id, &m))
            .or_else(|| d.models.first().map(|m| m.id.clone()))
            .ok_or_else(|| {
                Error::usage(
                    format!("{} declares no model", d.display_name),
                    "pass --model",
                )
            })?,
    };
    let max_output = catalog::known(&d, &model)
        .and_then(|id| d.model(id))
        .map(|m| m.max_output)
        .unwrap_or(4096);
    if catalog::known(&d, &model).is_none() {
        ctx.out.warn(&format!(
            "{model} is not in {}'s model list; sending it anyway",
            d.display_name
        ));
    }
    let max_tokens = args.max_tokens.unwrap_or(4096.min(max_output.max(1)));
    set.load_plugin(&paths.home, &entry.plugin_id);
    let time = ctx.env.time();
    let provider = set.open(&entry, &ctx.env, &settings, &ctx.out, time)?;
    let choice =
        crate::auth::choice::account_choice(&ctx.env, &settings, &d.id, args.account.clone());
    let source = Arc::new(TokenSource::new(
        Store::new(&paths),
        provider,
        choice.key,
        &choice.source,
        ctx.out.clone(),
    ));
    let mut client = ChatClient::new(source)?.stop_on_ctrl_c();
    if let Some(idle) = ctx.env.chat_idle_timeout {
        client = client.with_idle_timeout(idle);
    }
    let request = |messages: Vec<Message>, stream: bool| ChatRequest {
        model: model.clone(),
        max_tokens,
        system: args.system.clone(),
        messages,
        temperature: None,
        stop: Vec::new(),
        stream,
    };

    let single = match args.query.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::io("cannot read the prompt from stdin", e))?;
            Some(s.trim_end_matches(['\n', '\r']).to_string())
        }
        Some(q) => Some(q.to_string()),
        None => None,
    };
    if let Some(prompt) = single {
        if prompt.trim().is_empty() {
            return Err(Error::usage(
                "the prompt is empty",
                "pass a prompt with -q \"…\"",
            ));
        }
        let msgs = vec![Message {
            role: "user".into(),
            content: prompt,
        }];
        let reply = if args.json {
            client.send(&request(msgs, false), &mut |_| {})?
        } else {
            // Printed as it arrives; nothing of it is kept.
            let client = client.keep_streamed_text(0);
            let mut printed = false;
            let r = client.send(&request(msgs, true), &mut |t| {
                printed = true;
                ctx.out.result_raw(t)
            });
            // End the answer's line even when it was cut short, so the prompt starts afresh.
            if printed || r.is_ok() {
                ctx.out.result_raw("\n");
            }
            r?
        };
        report(ctx, &d.id, &reply, args.json);
        return Ok(ExitCode::SUCCESS);
    }

    // A session: one turn per line of stdin, the conversation kept.
    if std::io::stdin().is_terminal() {
        ctx.out.info(&format!(
            "chatting with {} ({model}); one message per line, Ctrl-D to end",
            d.display_name
        ));
    }
    let mut history: Vec<Message> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Error::io("cannot read stdin", e))?;
        if line.trim().is_empty() {
            continue;
        }
        history.push(Message {
            role: "user".into(),
            content: line,
        });
        let reply = client.send(&request(history.clone(), !args.json), &mut |t| {
            ctx.out.result_raw(t)
        })?;
        if !args.json {
            ctx.out.result_raw("\n");
        }
        report(ctx, &d.id, &reply, args.json);
        if reply.text_clipped {
            ctx.out.warn(&format!(
                "the answer was longer than {} KiB; only its start is kept in the conversation",
                crate::chat::KEPT_TEXT_CAP / 1024
            ));
        }
        history.push(Message {
            role: "assistant".into(),
            content: reply.text,
        });
    }
    Ok(ExitCode::SUCCESS)
}

fn report(ctx: &Ctx, provider: &str, reply: &ChatReply, as_json: bool) {
    if as_json {
        ctx.out.json(&json!({
            "provider": provider,
            "model": reply.model,
            "text": reply.text,
            "stop_reason": reply.stop_reason,
            "usage": {"input_tokens": reply.usage.input_tokens, "output_tokens": reply.usage.output_tokens},
            "account": {"name": reply.account, "reason": reply.account_reason},
            "retried_after_401": reply.retried_after_401,
        }));
    }
    ctx.out.log(
        1,
        &format!("login: {} ({})", reply.account, reply.account_reason),
    );
    if reply.retried_after_401 {
        ctx.out.log(
            1,
            "the first attempt got 401; the token was refreshed and the request retried",
        );
    }
    ctx.out.log(
        1,
        &format!(
            "usage: {} input tokens, {} output tokens; stop reason {}",
            reply.usage.input_tokens,
            reply.usage.output_tokens,
            reply.stop_reason.as_deref().unwrap_or("none")
        ),
    );
}

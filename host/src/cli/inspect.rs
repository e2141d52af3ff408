//! `paddock plugin inspect`.

use crate::config::RuntimeSection;
use crate::log::RunLog;
use crate::runtime::{EnvInstance, World};
use crate::spaces::describe;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `plugin inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component (`.wasm`).
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: InspectArgs) -> anyhow::Result<()> {
    let runtime = crate::run::runtime_for(&RuntimeSection::default(), RunLog::stderr())?;
    let plugin = runtime.load_any(&args.file)?;
    let info = plugin.info();
    // An env describes itself with its default parameters.
    let spec = match info.world {
        World::Environment => Some(EnvInstance::new(&plugin, 0).and_then(|mut e| e.describe(&Vec::new()))),
        _ => None,
    };
    // An algorithm says which parameters it lets change while it runs (`algo-tune`).
    let mutable = match info.world {
        World::Algorithm => Some(
            crate::runtime::AlgorithmInstance::new(&plugin, 0, crate::learner::Learner::new(tch::Device::Cpu))
                .and_then(|mut a| a.mutable_params()),
        ),
        _ => None,
    };
    if args.json {
        let spec_json = match &spec {
            Some(Ok(s)) => serde_json::to_value(s)?,
            Some(Err(e)) => serde_json::json!({ "error": e.to_string() }),
            None => serde_json::Value::Null,
        };
        let mut v = serde_json::to_value(info)?;
        v["package"] = serde_json::json!(format!("paddock:rl@{}", info.package_version));
        v["spec"] = spec_json;
        if let Some(m) = &mutable {
            v["mutable_params"] = match m {
                Ok(list) => serde_json::json!(list),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
        }
        println!("{}", serde_json::to_string_pretty(&v).context("failed to encode JSON")?);
        return Ok(());
    }
    println!("plugin    {}", info.name);
    println!("file      {} ({} bytes)", info.path.display(), info.size_bytes);
    println!("sha256    {}", info.sha256);
    let goals = if info.goals {
        " — goal-conditioned (exports goal-env: world goal-environment)"
    } else if info.tunable {
        " — tunable (exports algo-tune: world tunable-algorithm)"
    } else {
        ""
    };
    println!("world     {} (paddock:rl@{}){goals}", info.world, info.package_version);
    if let Some(code) = &info.code_sha256 {
        // A plugin on a language runtime: what is compiled is the runtime, shared.
        println!("runtime   sha256 {code} (compiled once for every plugin on it)");
        println!("app       {}", info.app_files.join(", "));
    }
    println!("exports   {}", info.exports.join(", "));
    println!("imports   {}", if info.imports.is_empty() { "none".to_string() } else { info.imports.join(",\n          ") });
    match &mutable {
        Some(Ok(list)) if list.is_empty() => println!("tunable   no parameter may change while it runs"),
        Some(Ok(list)) => println!("tunable   {} (may change while it runs: algo-tune)", list.join(", ")),
        Some(Err(e)) => println!("tunable   unknown: {e}"),
        None => {}
    }
    match spec {
        Some(Ok(s)) => {
            println!("env       {}", s.id);
            println!("  observation  {}", describe(&s.observation_space));
            println!("  action       {}", describe(&s.action_space));
            println!("  max steps    {}", s.max_episode_steps.map_or("none".into(), |m| m.to_string()));
            println!("  threshold    {}", s.reward_threshold.map_or("none".into(), |m| m.to_string()));
            println!("  info         {}", if s.info_features.is_empty() { "none".into() } else { s.info_features.join(", ") });
            println!("  batching     up to {} envs per instance", s.max_envs_per_instance);
            println!("  snapshots    {}", if s.supports_snapshot { "yes" } else { "no" });
        }
        Some(Err(e)) => println!("env       spec unavailable: {e}"),
        None => {}
    }
    Ok(())
}

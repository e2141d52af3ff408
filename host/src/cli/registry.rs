//! `paddock plugin publish|pull|ls|yank|keygen`: the plugin registry.

use crate::log::RunLog;
use crate::registry::{self, PluginRef, Registry};
use crate::store::S3Settings;
use anyhow::Context;
use std::path::PathBuf;

/// Where the registry is.
#[derive(Debug, clap::Args)]
pub struct RegistryArg {
    /// The registry: `s3://bucket/prefix` or a directory (else `$PADDOCK_REGISTRY`).
    #[arg(long, value_name = "URI")]
    registry: Option<String>,
}

impl RegistryArg {
    fn open(&self) -> anyhow::Result<Registry> {
        Registry::open(self.registry.as_deref(), &S3Settings::default())
    }
}

/// `plugin publish`.
#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub struct PublishArgs {
    /// The component (`.wasm`); it must load as a Paddock plugin.
    file: PathBuf,
    /// The published name, `TEAM/NAME`.
    #[arg(long)]
    name: String,
    /// Its version (semver, e.g. 1.2.0). A published version never changes.
    #[arg(long = "version", id = "plugin_version", value_name = "SEMVER")]
    plugin_version: String,
    /// Sign it with this secret key (from `paddock plugin keygen`).
    #[arg(long, value_name = "KEY_FILE")]
    sign: Option<PathBuf>,
    /// What it is.
    #[arg(long, default_value = "")]
    description: String,
    /// Who publishes it (default: `$USER`).
    #[arg(long)]
    author: Option<String>,
    #[command(flatten)]
    registry: RegistryArg,
}

/// `plugin pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// `TEAM/NAME@REQ` (e.g. `team/x@^1.2`; no `@`: the newest version).
    reference: String,
    /// Write the component here (default: only the local cache).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A trusted public key (`ed25519:…`, repeatable): the plugin must be signed by one.
    #[arg(long = "trust", value_name = "PUBLIC_KEY")]
    trust: Vec<String>,
    #[command(flatten)]
    registry: RegistryArg,
}

/// `plugin ls`.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Only names starting with this (e.g. `team/`).
    prefix: Option<String>,
    /// Print JSON lines, one per version.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArg,
}

/// `plugin yank`.
#[derive(Debug, clap::Args)]
pub struct YankArgs {
    /// `TEAM/NAME@VERSION`.
    reference: String,
    /// Un-yank it.
    #[arg(long)]
    undo: bool,
    #[command(flatten)]
    registry: RegistryArg,
}

/// `plugin keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (never overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn name_version(reference: &str) -> anyhow::Result<(String, semver::Version)> {
    let (name, v) = reference.split_once('@').with_context(|| format!("`{reference}`: write TEAM/NAME@VERSION"))?;
    registry::check_name(name)?;
    let v =
        semver::Version::parse(v.trim_start_matches('=')).with_context(|| format!("`{reference}`: `{v}` is not a version (e.g. 1.2.0)"))?;
    Ok((name.to_string(), v))
}

pub(crate) fn publish(args: PublishArgs) -> anyhow::Result<()> {
    registry::check_name(&args.name)?;
    let version = semver::Version::parse(&args.plugin_version)
        .with_context(|| format!("--version `{}` is not a version (e.g. 1.2.0)", args.plugin_version))?;
    let runtime = crate::run::runtime_for(&Default::default(), RunLog::discard())?;
    let plugin =
        runtime.load_any(&args.file).with_context(|| format!("{} is not a Paddock plugin; nothing was published", args.file.display()))?;
    let info = plugin.info();
    let bytes = std::fs::read(&args.file).with_context(|| format!("failed to read {}", args.file.display()))?;
    let key = args.sign.as_deref().map(registry::read_signing_key).transpose()?;
    let author = args.author.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    let reg = args.registry.open()?;
    let m = reg.publish(
        &bytes,
        &args.name,
        &version,
        &info.world.to_string(),
        &info.package_version,
        &args.description,
        &author,
        key.as_ref(),
    )?;
    println!(
        "published {}@{} to {} (sha256 {}, {} bytes, {}@{}{})",
        m.name,
        m.version,
        reg.location(),
        &m.sha256[..12],
        m.size,
        m.world,
        m.package_version,
        m.signature.as_ref().map_or_else(|| ", unsigned".into(), |s| format!(", signed by {}", s.public_key))
    );
    Ok(())
}

pub(crate) fn pull(args: PullArgs) -> anyhow::Result<()> {
    let r = PluginRef::parse(&args.reference)?;
    let reg = args.registry.open()?;
    for k in &args.trust {
        registry::parse_public_key(k).context("--trust")?;
    }
    let (m, yanked) = reg.resolve(&r)?;
    let cache = registry::cache_dir();
    let data = reg.fetch(&m, &args.trust, cache.as_deref())?;
    if yanked {
        eprintln!("warning: {}@{} is yanked", m.name, m.version);
    }
    let at = match (&args.out, &cache) {
        (Some(out), _) => {
            std::fs::write(out, &data).with_context(|| format!("failed to write {}", out.display()))?;
            out.clone()
        }
        (None, Some(c)) => c.join(format!("{}.wasm", m.sha256)),
        (None, None) => anyhow::bail!("no cache directory: pass --out FILE"),
    };
    println!(
        "pulled {}@{} (sha256 {}, {}@{}, {}) → {}",
        m.name,
        m.version,
        &m.sha256[..12],
        m.world,
        m.package_version,
        m.signature.as_ref().map_or_else(|| "unsigned".into(), |s| format!("signature verified, {}", s.public_key)),
        at.display()
    );
    Ok(())
}

pub(crate) fn ls(args: LsArgs) -> anyhow::Result<()> {
    let reg = args.registry.open()?;
    let names: Vec<String> = reg.names()?.into_iter().filter(|n| args.prefix.as_deref().is_none_or(|p| n.starts_with(p))).collect();
    if names.is_empty() && !args.json {
        println!("no plugins in {}", reg.location());
    }
    for name in names {
        for (v, yanked) in reg.versions(&name)? {
            let m = reg.manifest(&name, &v.to_string())?;
            if args.json {
                println!("{}", serde_json::to_string(&registry::VersionRow { manifest: m, yanked })?);
                continue;
            }
            println!(
                "{:<32} {:<10} {:<13} {} {:<8} {}{}",
                m.name,
                m.version,
                format!("{}@{}", m.world, m.package_version),
                &m.sha256[..12],
                if m.signature.is_some() { "signed" } else { "unsigned" },
                m.description,
                if yanked { " [yanked]" } else { "" }
            );
        }
    }
    Ok(())
}

pub(crate) fn yank(args: YankArgs) -> anyhow::Result<()> {
    let (name, v) = name_version(&args.reference)?;
    let reg = args.registry.open()?;
    reg.yank(&name, &v, args.undo)?;
    println!("{} {name}@{v} in {}", if args.undo { "un-yanked" } else { "yanked" }, reg.location());
    Ok(())
}

pub(crate) fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let (secret, public) = registry::keygen()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&args.out)
        .with_context(|| format!("failed to create {} (an existing key is never overwritten)", args.out.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    std::io::Write::write_all(&mut f, secret.as_bytes())?;
    println!("secret key written to {} (keep it private)", args.out.display());
    println!("public key: {public}");
    Ok(())
}

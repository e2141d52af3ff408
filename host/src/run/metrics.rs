//! Where metric lines go: `metrics.jsonl` (deterministic bytes: no wall-clock values) and a
//! TensorBoard event file beside it.

use crate::format::run_dir;
use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Where metric lines go: `metrics.jsonl` (deterministic bytes) and a TensorBoard event file
/// in the run directory (`tensorboard --logdir runs/`).
pub(super) struct MetricsSink {
    jsonl: std::io::BufWriter<std::fs::File>,
    tensorboard: super::tensorboard::EventWriter,
}

impl MetricsSink {
    /// Opens the sink of `run_dir` at `bytes` of `metrics.jsonl`. Lines written after that
    /// by a run that stopped are cut off (the resumed run writes them again, the same). On
    /// `resume`, the TensorBoard events are rebuilt from the kept lines into a fresh event
    /// file, so the stopped run's later points do not show beside the resumed run's.
    pub(super) fn open(run_dir: &Path, bytes: u64, resume: bool) -> anyhow::Result<Self> {
        let path = run_dir.join(run_dir::METRICS);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .context("failed to open metrics.jsonl")?;
        file.set_len(bytes).context("failed to truncate metrics.jsonl")?;
        let mut kept = String::new();
        if resume {
            std::io::Read::read_to_string(&mut file, &mut kept).context("failed to read metrics.jsonl")?;
            for e in std::fs::read_dir(run_dir)?.filter_map(Result::ok) {
                if e.file_name().to_string_lossy().starts_with(run_dir::TENSORBOARD_PREFIX) {
                    std::fs::remove_file(e.path()).context("failed to replace the TensorBoard event file")?;
                }
            }
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
        let mut tensorboard = super::tensorboard::EventWriter::create(run_dir)?;
        for line in kept.lines() {
            let v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).with_context(|| format!("{}: a line before the checkpoint is not JSON", path.display()))?;
            Self::to_tensorboard(&mut tensorboard, &v)?;
        }
        Ok(MetricsSink { jsonl: std::io::BufWriter::new(file), tensorboard })
    }

    fn to_tensorboard(tb: &mut super::tensorboard::EventWriter, line: &serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
        let step = line.get("step").and_then(serde_json::Value::as_u64).unwrap_or(0);
        for (k, v) in line {
            if let (true, Some(x)) = (k != "step", v.as_f64()) {
                tb.scalar(k, x as f32, step)?;
            }
        }
        Ok(())
    }

    pub(super) fn write(&mut self, line: serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
        Self::to_tensorboard(&mut self.tensorboard, &line)?;
        writeln!(self.jsonl, "{}", serde_json::Value::Object(line)).context("failed to write metrics.jsonl")
    }

    /// Flushes both; returns the length of `metrics.jsonl`.
    pub(super) fn flush(&mut self) -> anyhow::Result<u64> {
        self.tensorboard.flush()?;
        self.jsonl.flush().context("failed to write metrics.jsonl")?;
        Ok(self.jsonl.get_ref().metadata()?.len())
    }
}

"""Speed after a hot reload: env steps/s of a run whose Python env and reward (on the
runtimes) were swapped for new versions at 8 s, against a run that kept the versions it
started with, both over the window 10-25 s after the start (same binary, same sitting): env steps/s and
the process's CPU time per env step, five pairs run back to back (BENCHMARKS.md, "Hot
reload").

    PADDOCK_CACHE_DIR=/tmp/paddock-bench-reload-cache python3 scripts/bench_swap_rate.py $PWD target/release/paddock
"""
import json, os, shutil, subprocess, sys, tempfile, time
root, paddock = sys.argv[1], sys.argv[2]
def built(project, out, edit=None):
    src = tempfile.mkdtemp()
    shutil.copytree(os.path.join(root, "plugins", project), src, dirs_exist_ok=True)
    if edit:
        with open(os.path.join(src, "app.py"), "a") as f: f.write(edit)
    subprocess.run([paddock, "plugin", "build", src, "-o", out], check=True, capture_output=True)
def run(swap):
    d = tempfile.mkdtemp()
    env, rew = os.path.join(d, "env.wasm"), os.path.join(d, "reward.wasm")
    built("python/cartpole", env); built("python/cartpole-shaped", rew)
    store = os.path.join(d, "runs")
    p = subprocess.Popen([paddock, "train", "configs/cartpole-ppo.toml", "--set", f"store={store}",
        "--set", f"env.plugin={env}", "--set", f"reward.plugin={rew}", "--set", "total_steps=100000000",
        "--set", "train.stop_at_return=1e9", "--set", "train.eval_every=0", "--set", "train.checkpoint_every=0",
        "--set", "algorithm.device=cpu"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def step():
        for r in os.listdir(store) if os.path.isdir(store) else []:
            try: return json.load(open(os.path.join(store, r, "status.json")))["step"]
            except Exception: return None
    while step() is None: time.sleep(0.05)
    try:
        t0 = time.time()
        if swap:
            time.sleep(8)
            built("python/cartpole", env + ".new", "\n# v2\n"); os.replace(env + ".new", env)
            built("python/cartpole-shaped", rew + ".new", "\n# v2\n"); os.replace(rew + ".new", rew)
        while time.time() - t0 < 10: time.sleep(0.01)
        def cpu():
            f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        s0, a, c0 = step(), time.time(), cpu()
        time.sleep(15)
        s1, b, c1 = step(), time.time(), cpu()
    finally:
        # A failed measurement must not leave a run training under the next one.
        p.kill(); p.wait()
    log = open(os.path.join(store, os.listdir(store)[0], "log.txt")).read()
    swaps = log.count("hot reload: reward plugin") + log.count("serves all")
    return (s1 - s0) / (b - a), (c1 - c0) * 1e6 / (s1 - s0), swaps
for i in range(5):
    for swap in (False, True):
        rate, us, swaps = run(swap)
        print(f"{'swapped at 8 s' if swap else 'no swap       '}: {rate:8.0f} env steps/s, {us:6.1f} CPU-µs per env step over 10-25 s ({swaps} swap lines)", flush=True)

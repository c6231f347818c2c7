// Starts a real backend for the browser tests: `${SISE_BIN:-../target/debug/sise} up` on a free
// port, in its own namespace (e2e_<random hex>), on the simulated source, with the rate limit
// off and serving this project's static export (web/out, built here if missing). Waits for
// /readyz and returns the teardown that stops it with SIGTERM.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

async function waitReady(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sise exited (${child.exitCode ?? child.signalCode}) before ready; log:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`sise not ready at ${url} after ${timeoutMs} ms (${last}); log:\n${tail(logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-40).join("\n");
  } catch {
    return "(no log)";
  }
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const bin = path.resolve(webDir, process.env.SISE_BIN ?? "../target/debug/sise");
  if (!existsSync(bin)) throw new Error(`sise binary not found at ${bin} (build it with cargo, or set SISE_BIN)`);
  const outDir = path.join(webDir, "out");
  if (!existsSync(path.join(outDir, "index.html")) || process.env.SISE_E2E_BUILD === "1") {
    const r = spawnSync("npm", ["run", "build"], { cwd: webDir, stdio: "inherit" });
    if (r.status !== 0) throw new Error("npm run build failed");
  }

  const port = await freePort();
  const namespace = `e2e_${randomBytes(6).toString("hex")}`;
  const resultsDir = path.join(webDir, "test-results");
  mkdirSync(resultsDir, { recursive: true });
  const logFile = path.join(resultsDir, "sise-e2e.log");
  const log = openSync(logFile, "w");
  const child = spawn(bin, ["up"], {
    cwd: path.resolve(webDir, ".."),
    env: {
      ...process.env,
      SISE_NAMESPACE: namespace,
      SISE_HTTP_ADDR: `127.0.0.1:${port}`,
      SISE_WEB_DIR: outDir,
      SISE_RATE_LIMIT: "0",
      SISE_SOURCES: "sim",
    },
    stdio: ["ignore", log, log],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitReady(`${baseUrl}/readyz`, child, logFile, 60_000);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  process.env.SISE_E2E_BASE_URL = baseUrl;
  process.env.SISE_E2E_NAMESPACE = namespace;
  console.log(`sise up: ${baseUrl} namespace ${namespace} (log: ${path.relative(webDir, logFile)})`);

  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
  };
}

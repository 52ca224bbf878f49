/**
 * Runs the plugctl CLI in-process, as `main()` does for the real binary, with output captured and
 * the private dockerd of test/env as the engine.
 */
import { main } from '../../controller/main.ts';

/** What one command printed and its exit code. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** Runs `plugctl --state-dir STATE ARGS...` against `dockerHost`. */
export async function runPlugctl(
  state: string,
  dockerHost: string,
  args: readonly string[],
): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(
    ['--state-dir', state, ...args],
    { out: (t) => void (out += t), err: (t) => void (err += t) },
    { ...process.env, DOCKER_HOST: dockerHost },
  );
  return { code, out, err };
}

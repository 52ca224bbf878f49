/**
 * undici parses HTTP/1.1 with llhttp compiled to WebAssembly. V8 runs it as baseline (Liftoff)
 * code first and, once it has executed enough, recompiles its one large parser function with the
 * optimizing compiler on a background thread. Downloading one 50 MB blob is enough to trigger
 * that: about 100 ms of CPU and 7-10 MB of peak memory in every CLI process that pulls, spent on
 * a function whose work per body chunk is a few instructions (it only counts body bytes off
 * against Content-Length). On a 2-core host the compile competes with inflating and writing the
 * layer (measured: -40 to -100 ms of CPU per pull, peak RSS 101 -> 92 MB). Headers stay cheap at
 * baseline, so a long-running controller loses nothing that matters either.
 */
import { setFlagsFromString } from 'node:v8';

/** "Bytes executed" before V8 optimizes a WebAssembly function; the default is 13 million. */
const PARSER_TIERING_BUDGET = 2_147_483_647;

let applied = false;

/**
 * Keeps WebAssembly (in plugctl: only undici's HTTP parser) at baseline code. Must run before
 * undici parses its first response: V8 gives a module its budget when the module is instantiated.
 * The flag is process-wide and read only for modules instantiated afterwards; V8 documents
 * changing flags after start-up as unsupported in general, and this one is only read at
 * instantiation, which is what makes setting it here safe.
 */
export function keepHttpParserBaseline(): void {
  if (applied) return;
  applied = true;
  // The JS-to-WebAssembly call wrappers tier up too (after 1000 calls, with the optimizing compiler),
  // which keeps ~3 MB of the compiler's machine code resident in a controller that otherwise never
  // optimizes (bin/plugctl.js runs `run` without TurboFan); the generic wrapper serves as well.
  setFlagsFromString(
    `--wasm-tiering-budget=${PARSER_TIERING_BUDGET} --wasm-wrapper-tiering-budget=${PARSER_TIERING_BUDGET}`,
  );
}

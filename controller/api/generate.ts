/**
 * `make crds`: regenerates everything derived from the schema in schema.ts (the CRDs, the
 * precompiled validator and the editor schema), or with `--check` fails when any of them is stale. The validator's
 * generator is loaded only here, so importing the CRD generator never loads ajv.
 */
import { main as crdMain } from './crd-gen.ts';
import { main as editorSchemaMain } from './editor-schema.ts';
import { main as validatorMain } from './validator-gen.ts';

/** Runs every generator with `args`; returns the worst exit code. */
export async function main(args: readonly string[]): Promise<number> {
  return Math.max(await crdMain(args), await validatorMain(args), await editorSchemaMain(args));
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));

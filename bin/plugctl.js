#!/usr/bin/env node
// plugctl's entry point. It must parse and run on any Node.js that can load an ES module (it is kept
// to ES2020 syntax and imports nothing that an old Node lacks), so that an unsupported Node gets one
// line naming the version it is and the one plugctl needs (package.json's `engines`), and exit code 2,
// instead of a SyntaxError from the code it cannot run. bin/launch.js is the launcher proper.
import { readFileSync } from 'node:fs';

/**
 * The least Node.js major version `engines.node` (">=N") allows. Read from package.json at run
 * time, not copied. The range is compared by major only, and without the semver library, because
 * this runs before anything else is loaded on every start (semver costs ~25 ms to load); a unit test
 * keeps `engines.node` in the one form read here.
 */
function requiredNode() {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const range = manifest.engines.node;
  const match = /^>=\s*(\d+)(\.\d+)*$/.exec(range);
  return { range, major: match === null ? Number.NaN : Number(match[1]) };
}

const found = process.versions.node;
const required = requiredNode();
if (!(Number(found.split('.')[0]) >= required.major)) {
  process.stderr.write(
    `plugctl: Node.js ${found} (${process.execPath}) is not supported; plugctl needs Node.js ${required.range}\n`,
  );
  process.exitCode = 2;
} else {
  import('./launch.js');
}

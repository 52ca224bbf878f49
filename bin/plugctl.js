#!/usr/bin/env node
// Launcher: the compile cache makes repeated CLI starts cheap; the compiled build is used when
// present (`make build`), otherwise Node 24 runs the TypeScript sources directly (type stripping).
import { enableCompileCache } from 'node:module';
import { existsSync } from 'node:fs';

enableCompileCache?.();
const built = new URL('../dist/controller/main.js', import.meta.url);
const { main } = await import(existsSync(built) ? built.href : '../controller/main.ts');
process.exitCode = await main(process.argv.slice(2));

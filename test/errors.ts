/** Assertions about plugctl's errors, shared by the test suites. */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { PlugctlError } from '../controller/errors.ts';

/**
 * Asserts that `promise` rejects with an error of class `type` (default PlugctlError) carrying
 * `code` (and `kind`, when given), and returns that error for further checks.
 */
export async function rejectsWith<E extends PlugctlError = PlugctlError>(
  promise: Promise<unknown>,
  code: string,
  kind?: string,
  type: abstract new (...args: never[]) => E = PlugctlError as unknown as abstract new (
    ...args: never[]
  ) => E,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected a ${type.name} ${code}, got ${inspect(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    if (kind !== undefined) assert.equal(error.kind, kind, error.message);
    return error;
  }
  assert.fail(`expected a rejection with ${code}, but it resolved`);
}

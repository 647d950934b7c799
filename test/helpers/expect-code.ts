// The one assertion most error tests make: this call fails with a DatagateError of this stable code.
import assert from 'node:assert/strict';
import { hasCode } from '../../chain/index.ts';

/**
 * Await `p` (or call it) expecting a DatagateError with `code`; returns the error's fields. Fails the test
 * when it succeeds or throws anything else, naming what it got.
 */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<Record<string, unknown>> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(hasCode(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${(err as Error).message}`);
    return (err as { fields: Record<string, unknown> }).fields;
  }
  return assert.fail(`expected ${code}, nothing was thrown`);
}

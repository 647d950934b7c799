// Chooses the secp256k1 backend the process uses: libsecp256k1 when its binary loads, @noble otherwise.
// DATAGATE_CRYPTO overrides the choice (read once, at import): `noble` forces the pure-JS backend (to
// reproduce a report or compare speeds), `native` demands libsecp256k1 and fails at start-up without it,
// `auto` or unset picks the fastest available.
import type { Secp256k1Backend } from './backend.ts';
import { loadNativeSecp256k1, nativeLoadError } from './native.ts';
import { nobleSecp256k1 } from './noble.ts';

/** Values DATAGATE_CRYPTO accepts. */
export type Secp256k1Preference = 'auto' | 'native' | 'noble';

/**
 * The backend for a DATAGATE_CRYPTO value (undefined or '' mean auto). Throws an Error naming the variable
 * for an unknown value, or for `native` when the addon cannot be loaded: a misconfigured node should not
 * start quietly on the slow path.
 */
export function chooseSecp256k1Backend(setting: string | undefined): Secp256k1Backend {
  const pref = setting === undefined || setting === '' ? 'auto' : setting.toLowerCase();
  switch (pref) {
    case 'noble':
      return nobleSecp256k1;
    case 'native': {
      const native = loadNativeSecp256k1();
      if (native === null) {
        throw new Error('DATAGATE_CRYPTO=native but the secp256k1 addon could not be loaded; run `npm ci` or unset DATAGATE_CRYPTO', {
          cause: nativeLoadError(),
        });
      }
      return native;
    }
    case 'auto':
      return loadNativeSecp256k1() ?? nobleSecp256k1;
    default:
      throw new Error(`DATAGATE_CRYPTO must be one of auto, native, noble; got ${JSON.stringify(setting)}`);
  }
}

/** The process-wide secp256k1 backend used by recoverAddress and the recovery cache. */
export const secp256k1: Secp256k1Backend = chooseSecp256k1Backend(process.env['DATAGATE_CRYPTO']);

/** Which backend `secp256k1` is, for start-up logs and benchmark labels. */
export function secp256k1BackendName(): 'native' | 'noble' {
  return secp256k1.name;
}

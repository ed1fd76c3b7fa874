/** Placeholder verifier. */
export function verifyEdit(_before: Uint8Array, _after: Uint8Array, _file?: string): void {}

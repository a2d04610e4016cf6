// Valid key, policy and identity names and listing patterns — minio/kes auth.go `validName`/`validPattern`
// (reference/sse-kms-kes.md §14.1). Names become file names in the FS key store, so this is also what keeps a
// request from naming `../x` or `.tmp-…`.

export const nameLengthMax = 80;

function validChars(text: string, allowTrailingStar: boolean): boolean {
  const last = text.length - 1;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x30 && code <= 0x39) continue; // 0-9
    if (code >= 0x41 && code <= 0x5a) continue; // A-Z
    if (code >= 0x61 && code <= 0x7a) continue; // a-z
    if (code === 0x5f) continue; // '_'
    if (code === 0x2d && i > 0 && i < last) continue; // '-' not first/last
    if (code === 0x2a && allowTrailingStar && i === last) continue; // '*' only last
    return false;
  }
  return true;
}

/** 1–80 characters of [0-9A-Za-z_-], '-' neither first nor last, not exactly '_'. */
export function isValidName(name: string): boolean {
  if (name === '' || name === '_' || name.length > nameLengthMax) return false;
  return validChars(name, false);
}

/** A name prefix with an optional trailing '*'; '*' and '' list everything. */
export function isValidPattern(pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern === '_' || pattern.length > nameLengthMax) return false;
  return validChars(pattern, true);
}

/** The prefix a valid pattern stands for: `my-key*` → `my-key`, `*` → ``. */
export function patternPrefix(pattern: string): string {
  return pattern.endsWith('*') ? pattern.slice(0, -1) : pattern;
}

// Canonical encryption-context JSON (MinIO internal/kms/context.go; reference sse-kms-kes.md §7.3).
// The bytes are AEAD associated data for the KMS, so they must match MinIO's byte for byte:
// keys sorted by their UTF-8 bytes, no whitespace, Go encoding/json string escaping with escapeHTML, and
// `{}` for an empty context (an absent context and `{}` are different associated data).
// JSON.stringify is not usable: it leaves `<>&` and U+2028/U+2029 unescaped.

const hexDigits = '0123456789abcdef';

function escapeJsonString(value: string): string {
  let out = '';
  let runStart = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    let escaped: string | undefined;
    if (code < 0x80) {
      if (code >= 0x20 && code !== 0x22 && code !== 0x5c && code !== 0x3c && code !== 0x3e && code !== 0x26) continue;
      if (code === 0x22) escaped = '\\"';
      else if (code === 0x5c) escaped = '\\\\';
      else if (code === 0x0a) escaped = '\\n';
      else if (code === 0x0d) escaped = '\\r';
      else if (code === 0x09) escaped = '\\t';
      // Go's copy escapes other control bytes and <, >, & as \u00xx (no \b / \f short forms).
      else escaped = `\\u00${hexDigits[code >> 4]}${hexDigits[code & 0xf]}`;
    } else if (code === 0x2028 || code === 0x2029) {
      escaped = `\\u${code.toString(16)}`;
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i += 1; // a valid surrogate pair passes through
        continue;
      }
      escaped = '\\ufffd';
    } else if (code >= 0xd800 && code <= 0xdfff) {
      // A lone surrogate is JavaScript's analogue of invalid UTF-8, which Go writes as \ufffd.
      escaped = '\\ufffd';
    } else {
      continue;
    }
    out += value.slice(runStart, i) + escaped;
    runStart = i + 1;
  }
  return out + value.slice(runStart);
}

/** `{"k":"v",...}` exactly as MinIO's kms.Context.MarshalText writes it. */
export function canonicalContextJson(context: Readonly<Record<string, string>>): Buffer {
  const keys = Object.keys(context);
  if (keys.length === 0) return Buffer.from('{}');
  // The usual SSE-S3 context, {"<bucket>":"<bucket>/<object>"}: nothing to sort.
  if (keys.length === 1) return Buffer.from(`{"${escapeJsonString(keys[0]!)}":"${escapeJsonString(context[keys[0]!]!)}"}`, 'utf8');
  // Go's sort.Strings compares UTF-8 bytes; JS's default sort compares UTF-16 code units, which orders
  // U+E000..U+FFFF after supplementary characters. Compare the encoded bytes instead.
  const encodedKeys = keys.map((key) => ({ key, bytes: Buffer.from(key, 'utf8') }));
  encodedKeys.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  const members = encodedKeys.map(({ key }) => `"${escapeJsonString(key)}":"${escapeJsonString(context[key]!)}"`);
  return Buffer.from(`{${members.join(',')}}`, 'utf8');
}

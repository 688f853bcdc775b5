/**
 * Just enough of EC2's query-protocol XML for the fault layer: read a tag, and rewrite or drop the
 * items of a result set (`<imagesSet><item>…</item></imagesSet>`) without a full XML parser.
 * EC2 item sets nest (`<item>` inside `<item>`), so items are found by depth.
 */

export function errorXml(code: string, message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>' +
    `<Code>${code}</Code><Message>${escapeXml(message)}</Message>` +
    '</Error></Errors><RequestID>fault-layer</RequestID></Response>'
  );
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The text of the first `<tag>` in `xml`. */
export function firstTag(xml: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
}

/** Every text of `<tag>` in `xml`, in order. */
export function allTags(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].flatMap((m) => (m[1] ? [m[1]] : []));
}

/** Whether `xml` holds `<tag>value</tag>`. */
export function hasTag(xml: string, tag: string, value: string): boolean {
  return xml.includes(`<${tag}>${value}</${tag}>`);
}

/**
 * Rewrites each top-level `<item>` of the first `<setTag>` in `xml`: `fn` returns the item's new
 * text, or undefined to drop it. Anything else in the document is left as it was.
 */
export function mapSetItems(xml: string, setTag: string, fn: (item: string) => string | undefined): string {
  const open = `<${setTag}>`;
  const start = xml.indexOf(open);
  if (start < 0) return xml;
  const bodyStart = start + open.length;
  const items: string[] = [];
  let depth = 0;
  let itemStart = -1;
  const re = /<(\/?)item>|<\/([A-Za-z]+)>/g;
  re.lastIndex = bodyStart;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    if (m[2] === setTag && depth === 0) {
      const mapped = items.map(fn).filter((s): s is string => s !== undefined);
      return xml.slice(0, bodyStart) + mapped.join('') + xml.slice(m.index);
    }
    if (m[2] !== undefined) continue;
    if (m[1] === '') {
      if (depth === 0) itemStart = m.index;
      depth += 1;
    } else {
      depth -= 1;
      if (depth === 0) items.push(xml.slice(itemStart, m.index + m[0].length));
    }
  }
  return xml;
}

/** The query parameters of an EC2 call whose key matches `key` (e.g. /^ImageId\.\d+$/). */
export function paramValues(params: URLSearchParams, key: RegExp): string[] {
  const out: string[] = [];
  for (const [k, v] of params) if (key.test(k)) out.push(v);
  return out;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { child, children, parseXml, XmlError } from '../../../src/data/datasets/xml.js';

test('parseXml: elements, attributes, entities, CDATA, comments, line numbers', () => {
  const root = parseXml(`<?xml version="1.0" encoding="utf-8"?>
<!-- a comment -->
<annotation verified="yes" note='a &amp; b'>
  <name>cat &lt;1&gt; &#65;&#x42;</name>
  <empty/>
  <data><![CDATA[<raw> & stuff]]></data>
  <name>dog</name>
</annotation>`);
  assert.equal(root.name, 'annotation');
  assert.deepEqual(root.attrs, { verified: 'yes', note: 'a & b' });
  assert.equal(child(root, 'name')!.text, 'cat <1> AB');
  assert.equal(child(root, 'name')!.line, 4);
  assert.equal(child(root, 'empty')!.children.length, 0);
  assert.equal(child(root, 'data')!.text, '<raw> & stuff');
  assert.deepEqual(children(root, 'name').map((n) => n.text), ['cat <1> AB', 'dog']);
});

test('parseXml: malformed input reports the line', () => {
  const bad: [string, RegExp, number][] = [
    ['<a>\n<b></a>', /does not match <b>/, 2],
    ['<a>\n\n<b>', /unclosed element <b>/, 3],
    ['<a x=1></a>', /malformed attributes/, 1],
    ['<a>&nope;</a>', /unknown entity/, 1],
    ['', /no root element/, 1],
    ['<a/><b/>', /second root/, 1],
  ];
  for (const [src, re, line] of bad) {
    assert.throws(() => parseXml(src), (e: Error) => e instanceof XmlError && re.test(e.message) && e.line === line, src);
  }
});

#!/usr/bin/env node
// push_endpoint.js: a local stand-in for the push services talkproxy talks
// to (Web Push, webhook app servers, MPNS), for the integration tests. It
// checks each push request the way the real service would, logs it, and
// answers with the statuses a real one sends, or with answers a test scripted.
// Web Push bodies are decrypted by http_ece, not by talkproxy's own code.
//
// Usage: node tests/js/push_endpoint.js --port P --cert CERT.pem --key KEY.pem
//            [--host 127.0.0.1]
// Prints "listening <port>" once listening (P = 0 lets the kernel choose);
// runs until SIGTERM. Driven by tests/harness/pushep.py; the control API
// (/_ctl/...) is described there and at route() below.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const path = require('path');
const { p256Public } = require('./p256');

let ece;
try {
	ece = require('http_ece'); // through NODE_PATH
} catch (e) {
	try {
		ece = require(path.join(__dirname, 'node_modules', 'http_ece'));
	} catch (e2) {
		console.error('push_endpoint: http_ece is missing: run npm ci --prefix tests/js');
		process.exit(2);
	}
}

const MAX_BODY = 64 * 1024; // past this the connection is dropped
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const KINDS = ['wp', 'hook', 'mpns'];

const WP_MAX_BODY = 4096; // RFC 8030 §7.2: services must take at least 4096
const WP_URGENCY = ['very-low', 'low', 'normal', 'high'];
const VAPID_MAX_EXP = 24 * 3600; // RFC 8292 §2
const HOOK_SKEW = 300; // seconds a webhook timestamp may be off
const MPNS_MAX_BODY = 3072;
const MPNS_CLASSES = { raw: [3, 13, 23], toast: [2, 12, 22], token: [1, 11, 21] };

function usage(why) {
	console.error(`push_endpoint: ${why}\n` +
		'usage: push_endpoint.js --port P --cert CERT.pem --key KEY.pem [--host 127.0.0.1]');
	process.exit(2);
}

function parseArgs(argv) {
	const opts = { host: '127.0.0.1' };
	for (let i = 0; i < argv.length; i += 2) {
		const name = argv[i];
		const value = argv[i + 1];
		if (!['--port', '--cert', '--key', '--host'].includes(name))
			usage(`unknown argument ${name}`);
		if (value === undefined)
			usage(`${name} needs a value`);
		opts[name.slice(2)] = value;
	}
	if (!/^\d{1,5}$/.test(opts.port || '') || Number(opts.port) > 65535)
		usage('--port must be a port number');
	if (!opts.cert || !opts.key)
		usage('--cert and --key are required');
	opts.port = Number(opts.port);
	return opts;
}

// ---------------------------------------------------------------------------
// State, all in memory.

const state = {
	webhookKey: null, // KeyObject (Ed25519) pinned by /_ctl/config
	vapidRaw: null, // Buffer, the uncompressed P-256 point pinned
	subs: new Map(), // name -> { ecdh, auth } for /wp/<name>
	gone: new Set(), // names whose subscription was deleted: 410 from then on
	logs: new Map(), // "<kind>/<name>" -> [entry, ...]
	scripts: new Map(), // "<kind>/<name>" -> [scripted answer, ...]
};

function logFor(key) {
	if (!state.logs.has(key))
		state.logs.set(key, []);
	return state.logs.get(key);
}

// ---------------------------------------------------------------------------
// Small helpers.

function b64urlDecode(s) {
	return typeof s === 'string' && B64URL_RE.test(s) ? Buffer.from(s, 'base64url') : null;
}

function isUtf8(buf) {
	try {
		new TextDecoder('utf-8', { fatal: true }).decode(buf);
		return true;
	} catch (e) {
		return false;
	}
}

function ed25519Public(raw) {
	if (!raw || raw.length !== 32)
		return null;
	try {
		return crypto.createPublicKey({
			format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
		});
	} catch (e) {
		return null;
	}
}

function sendJson(res, status, value, headers = {}) {
	const body = JSON.stringify(value);
	res.writeHead(status, Object.assign({
		'Content-Type': 'application/json',
		'Content-Length': Buffer.byteLength(body),
	}, headers));
	res.end(body);
}

// ---------------------------------------------------------------------------
// Web Push (RFC 8030, 8291, 8292).

// Checks "Authorization: vapid t=<JWT>, k=<key>" against the push URL's
// origin. Returns the status a real service would answer (null when fine).
function checkVapid(req, origin, entry) {
	const problems = entry.problems;
	const value = req.headers.authorization;
	if (value === undefined) {
		problems.push('no Authorization header');
		return 401;
	}
	const m = /^vapid[ \t]+(.*)$/i.exec(value);
	if (!m) {
		problems.push(`Authorization is not the vapid scheme: ${value.slice(0, 40)}`);
		return 401;
	}
	// auth-params, RFC 7235 §2.1: name=value or name="value", comma separated.
	const params = {};
	for (const part of m[1].split(',')) {
		const p = /^[ \t]*([A-Za-z]+)[ \t]*=[ \t]*("?)([^"]*)\2[ \t]*$/.exec(part);
		if (!p) {
			problems.push(`malformed vapid parameter: ${part.slice(0, 40)}`);
			return 401;
		}
		const name = p[1].toLowerCase();
		if (name in params) {
			problems.push(`vapid parameter ${name} given twice`);
			return 401;
		}
		params[name] = p[3];
	}
	if (!params.t || !params.k) {
		problems.push('vapid Authorization needs both t= and k=');
		return 401;
	}
	const kRaw = b64urlDecode(params.k);
	const key = p256Public(kRaw);
	if (!key) {
		problems.push('vapid k= is not an unpadded base64url uncompressed P-256 point');
		return 401;
	}
	entry.vapid = { aud: null, exp: null, sub: null, k: params.k };
	const parts = params.t.split('.');
	if (parts.length !== 3 || !parts.every((x) => B64URL_RE.test(x))) {
		problems.push('vapid t= is not a JWT of three unpadded base64url parts');
		return 401;
	}
	let header, claims;
	try {
		header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
		claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
	} catch (e) {
		problems.push(`the JWT header or claims are not JSON: ${e.message}`);
		return 401;
	}
	if (!claims || typeof claims !== 'object' || Array.isArray(claims)) {
		problems.push('the JWT claims are not a JSON object');
		return 401;
	}
	entry.vapid.aud = claims.aud === undefined ? null : claims.aud;
	entry.vapid.exp = claims.exp === undefined ? null : claims.exp;
	entry.vapid.sub = claims.sub === undefined ? null : claims.sub;
	if (!header || header.typ !== 'JWT' || header.alg !== 'ES256') {
		problems.push(`the JWT header is ${JSON.stringify(header)}, not typ JWT, alg ES256`);
		return 401;
	}

	let status = null;
	const sig = Buffer.from(parts[2], 'base64url');
	if (sig.length !== 64) {
		problems.push(`the ES256 signature is ${sig.length} bytes, not 64 (raw r||s)`);
		status = 403;
	} else if (!crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`),
		{ key, dsaEncoding: 'ieee-p1363' }, sig)) {
		problems.push('the ES256 signature does not verify with the key in k=');
		status = 403;
	}
	if (state.vapidRaw && !state.vapidRaw.equals(kRaw)) {
		problems.push('k= is not the pinned VAPID key');
		status = 403;
	}

	// Claims problems are 401 unless the token is already refused as forged.
	const claimStatus = status || 401;
	if (claims.aud !== origin) {
		problems.push(`JWT aud ${JSON.stringify(claims.aud)} is not the push origin ${origin}`);
		status = claimStatus;
	}
	const now = Math.floor(Date.now() / 1000);
	if (!Number.isInteger(claims.exp)) {
		problems.push(`JWT exp ${JSON.stringify(claims.exp)} is not an integer`);
		status = claimStatus;
	} else if (claims.exp <= now) {
		problems.push(`JWT exp ${claims.exp} is not in the future (now ${now})`);
		status = claimStatus;
	} else if (claims.exp > now + VAPID_MAX_EXP) {
		problems.push(`JWT exp ${claims.exp} is more than 24 h ahead (now ${now})`);
		status = claimStatus;
	}
	if (typeof claims.sub !== 'string' || !/^(mailto|https):/.test(claims.sub)) {
		problems.push(`JWT sub ${JSON.stringify(claims.sub)} is not a mailto: or https: contact`);
		status = claimStatus;
	}
	return status;
}

// Checks the RFC 8188 header of an aes128gcm body by hand (so the layout
// RFC 8291 asks for is judged, not only what http_ece tolerates), then
// decrypts it with http_ece. Returns true when the body is acceptable:
// decrypted, and laid out as one record with a P-256 key id.
function decryptWebPush(sub, body, entry) {
	const problems = entry.problems;
	if (body.length < 21) {
		problems.push(`the body is ${body.length} bytes, too short for an aes128gcm header`);
		return false;
	}
	let ok = true;
	const layout = (why) => {
		problems.push(why);
		ok = false;
	};
	const rs = body.readUInt32BE(16);
	const idlen = body[20];
	const cipherLen = body.length - 21 - idlen;
	if (idlen !== 65)
		layout(`aes128gcm key id is ${idlen} bytes, not a 65-byte P-256 key`);
	else if (body[21] !== 4)
		layout('aes128gcm key id is not an uncompressed P-256 point');
	if (cipherLen < 17) {
		layout(`aes128gcm ciphertext is ${cipherLen} bytes, less than one record`);
		return false;
	}
	if (rs < 18 || rs < cipherLen)
		layout(`aes128gcm rs ${rs} splits ${cipherLen} bytes into more than the one record RFC 8291 allows`);
	try {
		const plain = ece.decrypt(body, { version: 'aes128gcm', privateKey: sub.ecdh, authSecret: sub.auth });
		entry.plaintext = plain.toString('utf8');
		entry.plaintext_b64 = plain.toString('base64');
	} catch (e) {
		layout(`aes128gcm decryption failed: ${e.message}`);
	}
	return ok;
}

function checkWebPush(name, req, body, entry) {
	const h = req.headers;
	const problems = entry.problems;
	entry.plaintext = null;
	entry.plaintext_b64 = null;
	entry.vapid = null;

	const sub = state.subs.get(name);
	let subStatus = null;
	if (!sub) {
		problems.push(state.gone.has(name) ? 'the subscription was deleted' : 'no such subscription');
		subStatus = state.gone.has(name) ? 410 : 404;
	}

	const authStatus = checkVapid(req, originOf(req), entry);

	let bad = false;
	const ttl = h.ttl;
	if (ttl === undefined) {
		problems.push('no TTL header');
		bad = true;
	} else if (!/^\d{1,10}$/.test(ttl)) {
		problems.push(`TTL ${JSON.stringify(ttl)} is not a non-negative integer`);
		bad = true;
	}
	// Content codings are case-insensitive (RFC 9110 §8.4.1).
	const encoding = (h['content-encoding'] || '').toLowerCase();
	if (encoding !== 'aes128gcm') {
		problems.push(`Content-Encoding is ${JSON.stringify(h['content-encoding'] || null)}, not aes128gcm`);
		bad = true;
	}
	if (h.urgency !== undefined && !WP_URGENCY.includes(h.urgency)) {
		problems.push(`Urgency ${JSON.stringify(h.urgency)} is not one of ${WP_URGENCY.join('/')}`);
		bad = true;
	}
	if (h.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(h.topic)) {
		problems.push(`Topic ${JSON.stringify(h.topic)} is not 1 to 32 base64url characters`);
		bad = true;
	}
	let tooLarge = false;
	if (body.length > WP_MAX_BODY) {
		problems.push(`the body is ${body.length} bytes, more than ${WP_MAX_BODY}`);
		tooLarge = true;
	}
	// Decrypt whenever there are keys to do it with, even if other checks
	// failed, so the log shows what was sent.
	let undecryptable = false;
	if (sub && encoding === 'aes128gcm')
		undecryptable = !decryptWebPush(sub, body, entry);

	const status = subStatus || authStatus || (tooLarge ? 413 : null) ||
		(bad || undecryptable ? 400 : null);
	if (status)
		return { status, body: JSON.stringify({ code: status, errors: problems }),
			headers: { 'Content-Type': 'application/json' } };
	return {
		status: 201,
		headers: { Location: `/msg/${crypto.randomBytes(12).toString('base64url')}`, TTL: ttl },
		body: '',
	};
}

// The origin of the URL the client used: RFC 6454 serialization (host in
// lower case, no :443), which is what a VAPID aud must be.
function originOf(req) {
	const host = req.headers.host || `127.0.0.1:${serverPort}`;
	try {
		return new URL(`https://${host}`).origin;
	} catch (e) {
		return `https://${host}`;
	}
}

// ---------------------------------------------------------------------------
// Webhook: a JSON POST signed with Ed25519 over "<timestamp>.<raw body>".

function checkWebhook(name, req, body, entry) {
	const h = req.headers;
	const problems = entry.problems;
	entry.json = null;
	entry.signature_ok = false;

	let unauthorized = false;
	const ts = h['x-talkproxy-timestamp'];
	const now = Math.floor(Date.now() / 1000);
	if (ts === undefined) {
		problems.push('no X-Talkproxy-Timestamp header');
		unauthorized = true;
	} else if (!/^\d{1,12}$/.test(ts)) {
		problems.push(`X-Talkproxy-Timestamp ${JSON.stringify(ts)} is not unix seconds`);
		unauthorized = true;
	} else if (Math.abs(Number(ts) - now) > HOOK_SKEW) {
		problems.push(`X-Talkproxy-Timestamp ${ts} is more than ${HOOK_SKEW} s from now (${now})`);
		unauthorized = true;
	}
	const sigHeader = h['x-talkproxy-signature'];
	let sig = null;
	if (sigHeader === undefined) {
		problems.push('no X-Talkproxy-Signature header');
		unauthorized = true;
	} else {
		const m = /^ed25519=(.*)$/.exec(sigHeader);
		sig = m ? b64urlDecode(m[1]) : null;
		if (!sig || sig.length !== 64) {
			problems.push('X-Talkproxy-Signature is not ed25519=<unpadded base64url 64-byte signature>');
			sig = null;
			unauthorized = true;
		}
	}
	if (!state.webhookKey) {
		problems.push('no webhook key pinned');
		unauthorized = true;
	} else if (sig && ts !== undefined) {
		const signed = Buffer.concat([Buffer.from(`${ts}.`, 'latin1'), body]);
		entry.signature_ok = crypto.verify(null, signed, state.webhookKey, sig);
		if (!entry.signature_ok) {
			problems.push('the Ed25519 signature does not verify over "<timestamp>.<body>"');
			unauthorized = true;
		}
	}

	let bad = false;
	const type = h['content-type'] || '';
	if (!/^application\/json(\s*;|$)/i.test(type)) {
		problems.push(`Content-Type ${JSON.stringify(type)} is not application/json`);
		bad = true;
	}
	if (!isUtf8(body)) {
		problems.push('the body is not UTF-8');
		bad = true;
	} else {
		try {
			const value = JSON.parse(body.toString('utf8'));
			if (value && typeof value === 'object' && !Array.isArray(value))
				entry.json = value;
			else {
				problems.push('the body is JSON but not an object');
				bad = true;
			}
		} catch (e) {
			problems.push(`the body is not JSON: ${e.message}`);
			bad = true;
		}
	}
	const status = unauthorized ? 401 : bad ? 400 : 200;
	return { status, headers: { 'Content-Type': 'application/json' },
		body: status === 200 ? '{}' : JSON.stringify({ errors: problems }) };
}

// ---------------------------------------------------------------------------
// MPNS: raw / toast / tile notifications.

const XML_ENTITIES = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function xmlUnescape(raw) {
	return raw.replace(/&(?:(#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos);)?/g,
		(m, ref) => {
			if (!ref)
				throw new Error('a bare & in text');
			if (ref[0] !== '#')
				return XML_ENTITIES[ref];
			const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
			if (code > 0x10ffff || code === 0)
				throw new Error(`character reference ${m} out of range`);
			return String.fromCodePoint(code);
		});
}

// Parses the small XML subset notification bodies use: an optional XML
// declaration, comments, elements with quoted attributes, text with the five
// entities and character references, CDATA. No DOCTYPE (a real service
// refuses those too). Returns { name, attrs, children, text }; throws on
// anything not well-formed. Namespaces are not resolved: callers compare
// prefixed names and check the xmlns:wp binding themselves.
function parseXml(s) {
	let i = 0;
	const NAME = /[A-Za-z_][A-Za-z0-9_.:-]*/y;
	const fail = (why) => {
		throw new Error(`${why} at offset ${i}`);
	};
	const ws = () => {
		while (i < s.length && ' \t\r\n'.includes(s[i]))
			i++;
	};
	const skipTo = (end, what) => {
		const e = s.indexOf(end, i);
		if (e < 0)
			fail(`unterminated ${what}`);
		i = e + end.length;
	};
	const name = () => {
		NAME.lastIndex = i;
		const m = NAME.exec(s);
		if (!m)
			fail('expected a name');
		i = NAME.lastIndex;
		return m[0];
	};
	const misc = () => {
		for (;;) {
			ws();
			if (s.startsWith('<!--', i))
				skipTo('-->', 'comment');
			else if (s.startsWith('<?', i))
				skipTo('?>', 'processing instruction');
			else
				return;
		}
	};
	const element = () => {
		if (s[i] !== '<')
			fail('expected an element');
		i++;
		const el = { name: name(), attrs: {}, children: [], text: '' };
		for (;;) {
			const before = i;
			ws();
			if (s.startsWith('/>', i)) {
				i += 2;
				return el;
			}
			if (s[i] === '>') {
				i++;
				break;
			}
			if (i === before)
				fail(`expected an attribute or > in <${el.name}>`);
			const attr = name();
			ws();
			if (s[i] !== '=')
				fail(`expected = after ${attr}`);
			i++;
			ws();
			const q = s[i];
			if (q !== '"' && q !== "'")
				fail(`expected a quoted value for ${attr}`);
			const e = s.indexOf(q, i + 1);
			if (e < 0)
				fail(`unterminated value of ${attr}`);
			const raw = s.slice(i + 1, e);
			if (raw.includes('<'))
				fail(`< in the value of ${attr}`);
			if (attr in el.attrs)
				fail(`attribute ${attr} given twice`);
			el.attrs[attr] = xmlUnescape(raw);
			i = e + 1;
		}
		for (;;) {
			if (i >= s.length)
				fail(`<${el.name}> is not closed`);
			if (s.startsWith('</', i)) {
				i += 2;
				const end = name();
				if (end !== el.name)
					fail(`</${end}> closes <${el.name}>`);
				ws();
				if (s[i] !== '>')
					fail(`expected > after </${end}`);
				i++;
				return el;
			}
			if (s.startsWith('<!--', i)) {
				skipTo('-->', 'comment');
			} else if (s.startsWith('<![CDATA[', i)) {
				const start = i + 9;
				skipTo(']]>', 'CDATA section');
				el.text += s.slice(start, i - 3);
			} else if (s.startsWith('<?', i)) {
				skipTo('?>', 'processing instruction');
			} else if (s.startsWith('<!', i)) {
				fail('markup declarations are not allowed');
			} else if (s[i] === '<') {
				el.children.push(element());
			} else {
				let e = s.indexOf('<', i);
				if (e < 0)
					e = s.length;
				const raw = s.slice(i, e);
				if (raw.includes(']]>'))
					fail(']]> in text');
				el.text += xmlUnescape(raw);
				i = e;
			}
		}
	};

	if (s.charCodeAt(0) === 0xfeff)
		i = 1;
	misc();
	if (s.startsWith('<!', i))
		fail('DOCTYPE is not allowed');
	const root = element();
	misc();
	if (i !== s.length)
		fail('content after the root element');
	return root;
}

// Checks a toast or tile document and copies its values into entry.
function checkMpnsXml(target, text, entry) {
	const problems = entry.problems;
	let root;
	try {
		root = parseXml(text);
	} catch (e) {
		problems.push(`the body is not well-formed XML: ${e.message}`);
		return;
	}
	if (root.name !== 'wp:Notification')
		problems.push(`the root element is <${root.name}>, not <wp:Notification>`);
	if (root.attrs['xmlns:wp'] !== 'WPNotification')
		problems.push('the wp prefix is not bound to the WPNotification namespace');
	if (root.text.trim())
		problems.push('text directly inside <wp:Notification>');
	const want = target === 'toast' ? 'wp:Toast' : 'wp:Tile';
	if (root.children.length !== 1 || root.children[0].name !== want) {
		problems.push(`<wp:Notification> must hold exactly one <${want}> for target ${target}, ` +
			`it holds ${root.children.map((c) => `<${c.name}>`).join('') || 'nothing'}`);
		return;
	}
	const kind = root.children[0];
	if (kind.text.trim())
		problems.push(`text directly inside <${want}>`);
	const allowed = target === 'toast' ?
		['wp:Text1', 'wp:Text2', 'wp:Param', 'wp:Sound', 'wp:Silent'] :
		['wp:BackgroundImage', 'wp:Count', 'wp:Title', 'wp:BackBackgroundImage',
			'wp:BackTitle', 'wp:BackContent'];
	const values = {};
	for (const child of kind.children) {
		if (!allowed.includes(child.name))
			problems.push(`<${child.name}> is not allowed in <${want}>`);
		else if (child.name in values)
			problems.push(`<${child.name}> given twice`);
		else if (child.children.length)
			problems.push(`<${child.name}> holds elements`);
		else
			values[child.name] = child.text;
	}
	if (target === 'toast') {
		for (const required of ['wp:Text1', 'wp:Text2'])
			if (!(required in values))
				problems.push(`<wp:Toast> has no <${required}>`);
		entry.text1 = values['wp:Text1'] === undefined ? null : values['wp:Text1'];
		entry.text2 = values['wp:Text2'] === undefined ? null : values['wp:Text2'];
		entry.param = values['wp:Param'] === undefined ? null : values['wp:Param'];
		for (const a of Object.keys(kind.attrs))
			problems.push(`<wp:Toast> has an unexpected attribute ${a}`);
	} else {
		const count = values['wp:Count'];
		if (count === undefined)
			problems.push('<wp:Tile> has no <wp:Count>');
		else if (!/^\d{1,2}$/.test(count.trim()))
			problems.push(`<wp:Count> ${JSON.stringify(count)} is not a number from 0 to 99`);
		else
			entry.count = Number(count.trim());
		for (const a of Object.keys(kind.attrs)) {
			if (a === 'Id')
				entry.tile_id = kind.attrs.Id;
			else
				problems.push(`<wp:Tile> has an unexpected attribute ${a}`);
		}
	}
}

function checkMpns(name, req, body, entry) {
	const h = req.headers;
	const problems = entry.problems;
	Object.assign(entry, { target: null, class: null, text1: null, text2: null,
		param: null, count: null, tile_id: null, body: body.toString('utf8') });

	const rawTarget = h['x-windowsphone-target'];
	const target = rawTarget === undefined ? 'raw' : rawTarget;
	if (!(target in MPNS_CLASSES)) {
		problems.push(`X-WindowsPhone-Target ${JSON.stringify(rawTarget)} is not toast or token`);
	} else {
		entry.target = target;
	}
	const cls = h['x-notificationclass'];
	if (cls === undefined) {
		problems.push('no X-NotificationClass header');
	} else if (!/^\d{1,2}$/.test(cls)) {
		problems.push(`X-NotificationClass ${JSON.stringify(cls)} is not a number`);
	} else {
		entry.class = Number(cls);
		if (entry.target && !MPNS_CLASSES[entry.target].includes(entry.class))
			problems.push(`class ${cls} is not a ${entry.target} class ` +
				`(${MPNS_CLASSES[entry.target].join('/')})`);
	}
	if (body.length > MPNS_MAX_BODY)
		problems.push(`the body is ${body.length} bytes, more than ${MPNS_MAX_BODY}`);
	if (entry.target === 'toast' || entry.target === 'token') {
		const type = h['content-type'] || '';
		if (!/^text\/xml(\s*;|$)/i.test(type))
			problems.push(`Content-Type ${JSON.stringify(type)} is not text/xml`);
		if (!isUtf8(body))
			problems.push('the XML body is not UTF-8');
		else if (body.length <= MPNS_MAX_BODY)
			checkMpnsXml(entry.target, body.toString('utf8'), entry);
	}
	if (problems.length)
		return { status: 400, headers: {}, body: '' };
	return {
		status: 200,
		headers: {
			'X-NotificationStatus': 'Received',
			'X-SubscriptionStatus': 'Active',
			'X-DeviceConnectionStatus': 'Connected',
		},
		body: '',
	};
}

// ---------------------------------------------------------------------------
// Push requests: check, log, answer (default or scripted).

const CHECKERS = { wp: checkWebPush, hook: checkWebhook, mpns: checkMpns };

function handlePush(kind, name, req, res, body, t_ms) {
	const key = `${kind}/${name}`;
	const entry = {
		t_ms,
		method: req.method,
		path: req.url,
		headers: Object.assign({}, req.headers), // node gives lower-case names
		body_b64: body.toString('base64'),
		status: null,
		problems: [],
		scripted: false,
		answer: 'status', // or hang, reset, garbage
	};
	logFor(key).push(entry);
	if (req.method !== 'POST') {
		entry.problems.push(`method ${req.method} is not POST`);
		entry.status = 405;
		sendJson(res, 405, {}, { Allow: 'POST' });
		return;
	}
	let answer;
	try {
		answer = CHECKERS[kind](name, req, body, entry);
	} catch (e) {
		console.error(`push_endpoint: checking ${key}: ${e.stack}`);
		entry.problems.push(`internal error while checking: ${e.message}`);
		answer = { status: 500, headers: {}, body: '' };
	}
	const script = state.scripts.get(key);
	if (script && script.length) {
		answer = script.shift();
		entry.scripted = true;
	}
	respond(req, res, entry, answer);
}

// Sends one answer: a status, or one of the misbehaviours (hang, reset,
// garbage), after delay_ms if given.
function respond(req, res, entry, answer) {
	const socket = req.socket;
	if (answer.hang) {
		// Never answer; the socket stays open until the client gives up or
		// the server stops (node's requestTimeout covers only receiving the
		// request). Nothing else waits on it: node is async.
		entry.answer = 'hang';
		return;
	}
	entry.answer = answer.reset ? 'reset' : answer.garbage ? 'garbage' : 'status';
	if (entry.answer === 'status')
		entry.status = answer.status;
	const act = () => {
		if (socket.destroyed)
			return;
		if (answer.reset) {
			socket.destroy();
		} else if (answer.garbage) {
			// Raw bytes on the TLS stream, bypassing the HTTP layer.
			socket.end(Buffer.from('\x00\x01\x02 this is not HTTP \xff\r\n\r\n', 'latin1'));
		} else {
			const body = answer.body === undefined ? '' :
				typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
			const headers = Object.assign({}, answer.headers || {});
			if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-length'))
				headers['Content-Length'] = Buffer.byteLength(body);
			res.writeHead(answer.status, headers);
			res.end(body);
		}
	};
	if (answer.delay_ms)
		setTimeout(() => {
			try {
				act();
			} catch (e) {
				console.error(`push_endpoint: late answer: ${e.stack}`);
			}
		}, answer.delay_ms);
	else
		act();
}

// Validates a scripted answer from /_ctl/script; returns an error or null.
function badScripted(r) {
	if (!r || typeof r !== 'object' || Array.isArray(r))
		return 'each response must be an object';
	const kinds = ['status', 'hang', 'reset', 'garbage'].filter((k) => r[k] !== undefined && r[k] !== false);
	if (kinds.length !== 1)
		return 'each response needs exactly one of status, hang, reset, garbage';
	if (r.status !== undefined && !(Number.isInteger(r.status) && r.status >= 200 && r.status <= 599))
		return 'status must be an integer from 200 to 599';
	for (const k of ['hang', 'reset', 'garbage'])
		if (r[k] !== undefined && typeof r[k] !== 'boolean')
			return `${k} must be true`;
	if (r.delay_ms !== undefined && !(Number.isInteger(r.delay_ms) && r.delay_ms >= 0 && r.delay_ms <= 600000))
		return 'delay_ms must be an integer from 0 to 600000';
	if (r.headers !== undefined && (typeof r.headers !== 'object' || r.headers === null ||
		Object.values(r.headers).some((v) => typeof v !== 'string' && typeof v !== 'number')))
		return 'headers must be an object of strings';
	const known = ['status', 'headers', 'body', 'hang', 'reset', 'garbage', 'delay_ms'];
	const unknown = Object.keys(r).filter((k) => !known.includes(k));
	if (unknown.length)
		return `unknown keys ${unknown.join(', ')}`;
	return null;
}

// ---------------------------------------------------------------------------
// The control API, for the tests (JSON in and out):
//   POST   /_ctl/config                  {"webhook_public", "vapid_public"}
//   POST   /_ctl/webpush/<name>          -> {"endpoint", "p256dh", "auth"}
//   DELETE /_ctl/webpush/<name>          pushes then get 410
//   POST   /_ctl/script/<kind>/<name>    {"responses": [...]} appended
//   GET    /_ctl/log/<kind>/<name>       -> {"requests": [...]}
//   GET    /_ctl/log                     -> {"<kind>/<name>": [...], ...}
//   DELETE /_ctl/log                     clears logs and pending scripts

function parseJsonBody(body) {
	if (!body.length)
		return {};
	const value = JSON.parse(body.toString('utf8'));
	if (!value || typeof value !== 'object' || Array.isArray(value))
		throw new Error('the body must be a JSON object');
	return value;
}

function handleControl(parts, req, res, body) {
	const method = req.method;
	const notAllowed = (allow) => sendJson(res, 405, { error: `use ${allow}` }, { Allow: allow });
	let input;
	if (method === 'POST') {
		try {
			input = parseJsonBody(body);
		} catch (e) {
			sendJson(res, 400, { error: e.message });
			return;
		}
	}

	if (parts.length === 1 && parts[0] === 'config') {
		if (method !== 'POST')
			return notAllowed('POST');
		const unknown = Object.keys(input).filter((k) => !['webhook_public', 'vapid_public'].includes(k));
		if (unknown.length)
			return sendJson(res, 400, { error: `unknown keys ${unknown.join(', ')}` });
		let webhookKey = state.webhookKey;
		let vapidRaw = state.vapidRaw;
		if (input.webhook_public !== undefined) {
			webhookKey = input.webhook_public === null ? null :
				ed25519Public(b64urlDecode(input.webhook_public));
			if (input.webhook_public !== null && !webhookKey)
				return sendJson(res, 400, { error: 'webhook_public is not a base64url 32-byte Ed25519 key' });
		}
		if (input.vapid_public !== undefined) {
			vapidRaw = input.vapid_public === null ? null : b64urlDecode(input.vapid_public);
			if (input.vapid_public !== null && !p256Public(vapidRaw))
				return sendJson(res, 400, { error: 'vapid_public is not a base64url uncompressed P-256 point' });
		}
		state.webhookKey = webhookKey;
		state.vapidRaw = vapidRaw;
		return sendJson(res, 200, {});
	}

	if (parts.length === 2 && parts[0] === 'webpush' && NAME_RE.test(parts[1])) {
		const name = parts[1];
		if (method === 'POST') {
			const ecdh = crypto.createECDH('prime256v1');
			ecdh.generateKeys();
			const auth = crypto.randomBytes(16);
			state.subs.set(name, { ecdh, auth });
			state.gone.delete(name);
			const host = req.headers.host || `127.0.0.1:${serverPort}`;
			return sendJson(res, 200, {
				endpoint: `https://${host}/wp/${name}`,
				p256dh: ecdh.getPublicKey().toString('base64url'),
				auth: auth.toString('base64url'),
			});
		}
		if (method === 'DELETE') {
			state.subs.delete(name);
			state.gone.add(name);
			return sendJson(res, 200, {});
		}
		return notAllowed('POST, DELETE');
	}

	if (parts.length === 3 && parts[0] === 'script' && KINDS.includes(parts[1]) &&
		NAME_RE.test(parts[2])) {
		if (method !== 'POST')
			return notAllowed('POST');
		const responses = input.responses;
		if (!Array.isArray(responses))
			return sendJson(res, 400, { error: 'responses must be a list' });
		for (const r of responses) {
			const why = badScripted(r);
			if (why)
				return sendJson(res, 400, { error: why });
		}
		const key = `${parts[1]}/${parts[2]}`;
		if (!state.scripts.has(key))
			state.scripts.set(key, []);
		state.scripts.get(key).push(...responses);
		return sendJson(res, 200, { pending: state.scripts.get(key).length });
	}

	if (parts[0] === 'log' && parts.length === 1) {
		if (method === 'GET')
			return sendJson(res, 200, Object.fromEntries(state.logs));
		if (method === 'DELETE') {
			state.logs.clear();
			state.scripts.clear();
			return sendJson(res, 200, {});
		}
		return notAllowed('GET, DELETE');
	}
	if (parts[0] === 'log' && parts.length === 3 && KINDS.includes(parts[1]) &&
		NAME_RE.test(parts[2])) {
		if (method !== 'GET')
			return notAllowed('GET');
		return sendJson(res, 200, { requests: state.logs.get(`${parts[1]}/${parts[2]}`) || [] });
	}
	return sendJson(res, 404, {});
}

// ---------------------------------------------------------------------------
// The server.

function pathParts(req) {
	return req.url.split('?')[0].split('/').slice(1);
}

// [kind, name] when the request is for a push URL, else null.
function pushTarget(parts) {
	if (parts.length === 2 && KINDS.includes(parts[0]) && NAME_RE.test(parts[1]))
		return parts;
	return null;
}

function route(req, res, body, t_ms) {
	const parts = pathParts(req);
	if (parts[0] === '_ctl')
		return handleControl(parts.slice(1), req, res, body);
	const target = pushTarget(parts);
	if (target)
		return handlePush(target[0], target[1], req, res, body, t_ms);
	return sendJson(res, 404, {});
}

function onRequest(req, res) {
	const t_ms = Date.now();
	const chunks = [];
	let size = 0;
	let dropped = false;
	req.on('data', (chunk) => {
		if (dropped)
			return;
		size += chunk.length;
		if (size > MAX_BODY) {
			dropped = true;
			console.error(`push_endpoint: ${req.method} ${req.url}: body over ${MAX_BODY} bytes, dropping`);
			const target = pushTarget(pathParts(req));
			if (target)
				logFor(`${target[0]}/${target[1]}`).push({
					t_ms, method: req.method, path: req.url,
					headers: Object.assign({}, req.headers), body_b64: '', status: null,
					problems: [`the body is over ${MAX_BODY} bytes: connection dropped`],
					scripted: false, answer: 'dropped',
				});
			req.socket.destroy();
			return;
		}
		chunks.push(chunk);
	});
	req.on('error', () => {}); // a client that goes away mid-body
	req.on('end', () => {
		if (dropped)
			return;
		try {
			route(req, res, Buffer.concat(chunks), t_ms);
		} catch (e) {
			console.error(`push_endpoint: ${req.method} ${req.url}: ${e.stack}`);
			try {
				if (!res.headersSent)
					sendJson(res, 500, { error: e.message });
				else
					res.destroy();
			} catch (e2) {
				req.socket.destroy();
			}
		}
	});
}

let serverPort = 0;

function main() {
	const opts = parseArgs(process.argv.slice(2));
	const server = https.createServer({
		cert: fs.readFileSync(opts.cert),
		key: fs.readFileSync(opts.key),
	}, onRequest);
	// Keep idle keep-alive connections longer than node's 5 s default, like
	// a real service; a hung request is not subject to any server timeout.
	server.keepAliveTimeout = 30000;
	server.on('clientError', (err, socket) => socket.destroy());
	server.on('error', (err) => {
		console.error(`push_endpoint: ${err.message}`);
		process.exit(1);
	});
	process.on('uncaughtException', (err) => {
		console.error(`push_endpoint: uncaught: ${err.stack}`);
	});
	process.on('SIGTERM', () => {
		server.close();
		server.closeAllConnections();
		process.exit(0);
	});
	server.listen(opts.port, opts.host, () => {
		serverPort = server.address().port;
		console.log(`listening ${serverPort}`);
	});
}

main();

#!/usr/bin/env node
// check_webpush.js: judges talkproxy's Web Push output with code it did not
// write: bodies are decrypted by http_ece (the receiver side of RFC 8188 and
// 8291), VAPID tokens are verified with node's crypto. Prints TAP.
//
// Usage: node tests/js/check_webpush.js [path/to/tests/test_webpush]
// (default $TP_BUILDDIR/tests/test_webpush). Needs `npm ci --prefix tests/js`.
'use strict';

const assert = require('assert');
const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { p256Public } = require('./p256');

let ece;
try {
	ece = require('http_ece');
} catch (e) {
	console.log('Bail out! http_ece is missing: run npm ci --prefix tests/js');
	process.exit(1);
}

const binary = process.argv[2] ||
	path.join(process.env.TP_BUILDDIR || '.', 'tests', 'test_webpush');

let n = 0;
let failed = 0;

function ok(cond, name, diag) {
	n++;
	console.log(`${cond ? '' : 'not '}ok ${n} - ${name}`);
	if (!cond) {
		failed++;
		if (diag)
			console.log(`#   ${String(diag).split('\n').join('\n#   ')}`);
	}
}

// Runs fn and reports a throw as a failure with its message.
function check(name, fn) {
	try {
		const r = fn();
		ok(r !== false, name);
	} catch (e) {
		ok(false, name, e.message);
	}
}

function run(args, input) {
	const r = spawnSync(binary, args, { input, maxBuffer: 1 << 20 });
	if (r.error)
		throw r.error;
	return { status: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
}

// RFC 8291 §5: proves http_ece is a faithful receiver before it judges us.
const RFC = {
	uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
	auth: 'BTBZMqHH6r4Tts7J_aSIgg',
	plaintext: 'When I grow up, I want to be a watermelon',
	body: 'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlml' +
		'MoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mq' +
		'gkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};

function checkOracle() {
	const ua = crypto.createECDH('prime256v1');
	ua.setPrivateKey(Buffer.from(RFC.uaPrivate, 'base64url'));
	const params = { version: 'aes128gcm', privateKey: ua, authSecret: RFC.auth };
	check('http_ece decrypts the RFC 8291 example', () =>
		ece.decrypt(Buffer.from(RFC.body, 'base64url'), params).toString() ===
			RFC.plaintext);
	const forged = Buffer.from(RFC.body, 'base64url');
	forged[forged.length - 1] ^= 1;
	ok(throws(() => ece.decrypt(forged, params)),
		'http_ece refuses the RFC example with one bit flipped');
}

function throws(fn) {
	try {
		fn();
		return false;
	} catch (e) {
		return true;
	}
}

function newSubscriber() {
	const ecdh = crypto.createECDH('prime256v1');
	ecdh.generateKeys();
	return { ecdh, auth: crypto.randomBytes(16) };
}

// Encrypts through the C binary; plain is a Buffer sent on stdin.
function encrypt(sub, plain, opts = {}) {
	let p256dh = sub.ecdh.getPublicKey().toString('base64url');
	if (opts.padded)
		p256dh += '='.repeat((4 - p256dh.length % 4) % 4);
	const r = run(['--encrypt', p256dh, sub.auth.toString('base64url'), '-'], plain);
	if (r.status !== 0)
		throw new Error(`test_webpush --encrypt exited ${r.status}: ${r.err}`);
	return Buffer.from(r.out.trim(), 'hex');
}

function decrypt(sub, body, auth = sub.auth) {
	return ece.decrypt(body, { version: 'aes128gcm', privateKey: sub.ecdh, authSecret: auth });
}

// The RFC 8188 header, read by hand rather than trusted to http_ece.
function checkLayout(body, len) {
	assert.strictEqual(body.length, 16 + 4 + 1 + 65 + len + 1 + 16, 'length');
	assert.strictEqual(body.readUInt32BE(16), 4096, 'rs');
	assert.strictEqual(body[20], 65, 'idlen');
	assert.strictEqual(body[21], 0x04, 'key form');
	// Throws unless the sender key is a point on P-256.
	const probe = crypto.createECDH('prime256v1');
	probe.generateKeys();
	probe.computeSecret(body.subarray(21, 86));
}

const utf8 = 'Grüße aus Köln — ☕ 你好，世界 🍉 «chat»';
const messages = [
	['an empty message', Buffer.alloc(0)],
	['a 1-byte message', Buffer.from('x')],
	['a 100-byte message', Buffer.from('m'.repeat(100))],
	['a 3993-byte message, the most allowed', crypto.randomBytes(3993)],
	['a UTF-8 message', Buffer.from(utf8, 'utf8')],
	['every byte value', Buffer.from([...Array(256).keys()])],
	['a message ending in 0x02 and zero bytes', Buffer.from([0x41, 0x02, 0, 0])],
	['a JSON payload', Buffer.from(JSON.stringify({ from: 'juliet@example.net', body: utf8 }))],
];

function checkEncryption() {
	for (const [name, plain] of messages) {
		const sub = newSubscriber();
		let body;
		check(`encrypts ${name} into one aes128gcm record`, () => {
			body = encrypt(sub, plain);
			checkLayout(body, plain.length);
		});
		check(`http_ece decrypts ${name}`, () => {
			const got = decrypt(sub, body);
			assert.ok(got.equals(plain), `got ${got.length} bytes`);
		});
	}
	const sub = newSubscriber();
	check('accepts a padded p256dh and encrypts for it', () =>
		decrypt(sub, encrypt(sub, Buffer.from('padded'), { padded: true }))
			.toString() === 'padded');
	const text = 'for one subscriber only';
	const body = encrypt(sub, Buffer.from(text));
	ok(throws(() => decrypt(sub, body, crypto.randomBytes(16))),
		'a body does not decrypt with another auth secret');
	ok(throws(() => decrypt(newSubscriber(), body, sub.auth)),
		'a body does not decrypt with another private key');
	check('a message encrypted twice gives two bodies that both decrypt', () => {
		const again = encrypt(sub, Buffer.from(text));
		assert.ok(!again.equals(body), 'the bodies are equal');
		assert.strictEqual(decrypt(sub, body).toString(), text);
		assert.strictEqual(decrypt(sub, again).toString(), text);
	});
	const r = run(['--encrypt', sub.ecdh.getPublicKey().toString('base64url'),
		sub.auth.toString('base64url'), '-'], crypto.randomBytes(3994));
	ok(r.status !== 0 && r.out === '', 'refuses a 3994-byte message');
}

function rawPublic(keyObject) {
	const jwk = keyObject.export({ format: 'jwk' });
	return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'),
		Buffer.from(jwk.y, 'base64url')]);
}

const B64URL = '[A-Za-z0-9_-]+';
const HEADER = new RegExp(`^vapid t=(${B64URL})\\.(${B64URL})\\.(${B64URL}), k=(${B64URL})$`);

// Checks one Authorization value against the key it should be signed with.
function checkVapid(label, keyfile, privateKey, endpoint) {
	const subject = 'mailto:ops@example.net';
	const before = Math.floor(Date.now() / 1000);
	const r = run(['--vapid', keyfile, endpoint, subject]);
	const m = HEADER.exec(r.out.trim());
	ok(r.status === 0 && m, `${label}: the header for ${endpoint} has the vapid t=, k= shape`,
		r.err || r.out);
	if (!m)
		return;
	const [, h, c, s, k] = m;
	check(`${label}: k= is the key file's public key`, () =>
		Buffer.from(k, 'base64url').equals(rawPublic(crypto.createPublicKey(privateKey))));
	const sig = Buffer.from(s, 'base64url');
	const verify = (input) => crypto.verify('sha256', Buffer.from(input),
		{ key: p256Public(Buffer.from(k, 'base64url')), dsaEncoding: 'ieee-p1363' }, sig);
	check(`${label}: the ES256 signature verifies with the key from k=`, () => {
		assert.strictEqual(sig.length, 64);
		assert.ok(verify(`${h}.${c}`));
	});
	ok(!verify(`${h}.${c}x`), `${label}: the signature does not verify for other claims`);
	check(`${label}: the token header is typ JWT, alg ES256`, () =>
		assert.deepStrictEqual(JSON.parse(Buffer.from(h, 'base64url')),
			{ typ: 'JWT', alg: 'ES256' }));
	check(`${label}: aud is the endpoint's origin, exp 12 h ahead, sub the contact`, () => {
		const claims = JSON.parse(Buffer.from(c, 'base64url'));
		assert.deepStrictEqual(Object.keys(claims).sort(), ['aud', 'exp', 'sub']);
		assert.strictEqual(claims.aud, new URL(endpoint).origin);
		assert.strictEqual(claims.sub, subject);
		assert.ok(Number.isInteger(claims.exp));
		const after = Math.floor(Date.now() / 1000);
		assert.ok(claims.exp >= before + 43200 && claims.exp <= after + 43200,
			`exp ${claims.exp}, now ${after}`);
		assert.ok(claims.exp <= after + 86400, 'RFC 8292 allows 24 h at most');
	});
}

const endpoints = [
	'https://fcm.googleapis.com/fcm/send/dE5mKpsq3wY:APA91bH',
	'https://updates.push.services.mozilla.com/wpush/v2/gAAAAABl',
	'https://web.push.apple.com/QGuQyavXutnMH',
	'https://Push.Example.NET:443/up?token=abc',
	'https://ntfy.example.org:8443/upAbCdEf?up=1',
];

function writeKey(dir, name, pem) {
	const file = path.join(dir, name);
	fs.writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
	return file;
}

function checkKeys(dir) {
	const generated = path.join(dir, 'generated.pem');
	const g = run(['--generate', generated]);
	check('the generated key file has mode 0600 and node reads a P-256 key', () => {
		assert.strictEqual(g.status, 0, g.err);
		assert.strictEqual(fs.statSync(generated).mode & 0o777, 0o600);
		const key = crypto.createPrivateKey(fs.readFileSync(generated));
		assert.strictEqual(key.asymmetricKeyDetails.namedCurve, 'prime256v1');
	});
	const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
	const keys = [
		['generated key', generated, fs.existsSync(generated) ?
			crypto.createPrivateKey(fs.readFileSync(generated)) : null],
		['node PKCS#8 key', writeKey(dir, 'pkcs8.pem',
			privateKey.export({ type: 'pkcs8', format: 'pem' })), privateKey],
		['node SEC1 key', writeKey(dir, 'sec1.pem',
			privateKey.export({ type: 'sec1', format: 'pem' })), privateKey],
	];
	// Every endpoint with our own key; one each for keys node wrote, which
	// shows load reads what other tools write.
	for (const [label, file, key] of keys) {
		if (!key)
			continue;
		for (const endpoint of label === 'generated key' ? endpoints : endpoints.slice(0, 1))
			checkVapid(label, file, key, endpoint);
	}
	fs.chmodSync(keys[1][1], 0o644);
	const r = run(['--vapid', keys[1][1], endpoints[0], 'mailto:ops@example.net']);
	ok(r.status !== 0 && r.out === '', 'refuses a key file readable by others');
}

function main() {
	if (!fs.existsSync(binary)) {
		console.log(`Bail out! ${binary} not found`);
		process.exit(1);
	}
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check_webpush.'));
	try {
		checkOracle();
		checkEncryption();
		checkKeys(dir);
	} catch (e) {
		console.log(`Bail out! ${e.message.split('\n')[0]}`);
		process.exit(1);
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
	console.log(`1..${n}`);
	process.exit(failed ? 1 : 0);
}

main();

// p256.js: P-256 public keys as Web Push writes them (65-byte uncompressed
// points), for the test scripts that check our Web Push independently.
'use strict';

const crypto = require('crypto');

// A P-256 public KeyObject from the 65-byte uncompressed point; null when the
// bytes are not a point on the curve.
function p256Public(raw) {
	if (!raw || raw.length !== 65 || raw[0] !== 4)
		return null;
	try {
		return crypto.createPublicKey({
			format: 'jwk',
			key: {
				kty: 'EC', crv: 'P-256',
				x: raw.subarray(1, 33).toString('base64url'),
				y: raw.subarray(33).toString('base64url'),
			},
		});
	} catch (e) {
		return null;
	}
}

module.exports = { p256Public };

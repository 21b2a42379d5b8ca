// CloudFront Function (viewer-request, cloudfront-js-2.0): friendly image URLs to variants.
//
//   /img/{original_key}?w=800[&h=600][&fmt=webp]  ->  /variants/{original_key}/{w}x{h}.{fmt}
//   /img/{original_key}?w=400&h=400&fit=cover     ->  /variants/{original_key}/{w}x{h}-cover.{fmt}
//
// It runs on the /img/ and /variants/ behaviours. CloudFront chose the behaviour (and with
// it whether a signature is required) from the path the viewer sent, before this runs; a
// path that percent-encodes an unreserved character (/img/%69mages/...) is refused, because
// S3 and the resizer would decode it into a prefix another behaviour guards.
//
// The width (and height) snap to the allowlist so the cache key stays small (a cover box to the
// allowed one of the nearest aspect ratio, then by width); without w the
// width comes from client hints, without fmt the format from Accept's q-values (ties: AVIF >
// WebP > JPEG > PNG). Hints never enter the cache key: only the rewritten URI does. Malformed
// input gets 400. The allowlist is
// written into this file at synth from the deployment config (STOWAGE_CONFIG below).
var STOWAGE_CONFIG = __STOWAGE_CONFIG__;

var NON_CANONICAL = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2d|2e|5f|7e|2[146-9a-c]|3[abd]|40)/i;
var LOWER_HEX = /%(?:[a-f][0-9a-fA-F]|[0-9A-F][a-f])/;

function badRequest(message) {
    return {
        statusCode: 400,
        statusDescription: 'Bad Request',
        headers: {
            'content-type': { value: 'application/json' },
            'cache-control': { value: 'no-store' },
            'x-content-type-options': { value: 'nosniff' },
            'content-security-policy': { value: "default-src 'none'; sandbox" }
        },
        // The error body every Stowage refusal has.
        body: JSON.stringify({ error: 'bad_request', detail: message })
    };
}

function snap(value, allowed) {
    // The smallest allowed size that is at least the asked one, else the largest.
    var best = null;
    for (var i = 0; i < allowed.length; i++) {
        var candidate = allowed[i];
        if (candidate >= value && (best === null || candidate < best)) {
            best = candidate;
        }
    }
    if (best === null) {
        best = Math.max.apply(null, allowed);
    }
    return best;
}

// The cover sizes (boxes, and widths x heights > 0) of the aspect ratio nearest the asked one;
// of those, the width snaps as a width does.
function coverSize(width, height) {
    var sizes = STOWAGE_CONFIG.boxes.slice();
    STOWAGE_CONFIG.widths.forEach(function (w) {
        STOWAGE_CONFIG.heights.forEach(function (h) {
            if (h > 0) {
                sizes.push([w, h]);
            }
        });
    });
    var ratio = Math.log(width / height);
    var nearest = [];
    var distance = Infinity;
    for (var i = 0; i < sizes.length; i++) {
        var d = Math.abs(Math.log(sizes[i][0] / sizes[i][1]) - ratio);
        if (d < distance - 1e-9) {
            nearest = [];
            distance = d;
        }
        if (d <= distance + 1e-9) {
            nearest.push(sizes[i]);
        }
    }
    if (nearest.length === 0) {
        return null;
    }
    var w = snap(width, nearest.map(function (s) { return s[0]; }));
    return nearest.filter(function (s) { return s[0] === w; })[0];
}

function validKey(key) {
    if (key.length === 0 || key.length > 3072 || NON_CANONICAL.test(key) || LOWER_HEX.test(key)) {
        return false;
    }
    var segments = key.split('/');
    for (var i = 0; i < segments.length; i++) {
        var segment = segments[i].toLowerCase();
        if (segment === '' || segment === '.' || segment === '..' || segment === '%2e' ||
            segment === '%2e%2e' || segment === '.%2e' || segment === '%2e.') {
            return false;
        }
    }
    return !/[\\\x00-\x1f\x7f]|%5c|%00|%2f/i.test(key) && segments[0] !== 'variants';
}

function number(param) {
    if (!param) {
        return null;
    }
    if (!/^[0-9]{1,5}$/.test(param.value)) {
        return NaN;
    }
    return parseInt(param.value, 10);
}

// Server preference when q-values tie; the fallback when no allowed format is acceptable.
var PREFERENCE = ['avif', 'webp', 'jpeg', 'png'];
var FALLBACK = ['jpeg', 'png', 'webp', 'avif'];
var MODERN = ['avif', 'webp'];
var TOKEN = "[a-z0-9!#$%&'*+.^_`|~-]+";
var MEDIA_RANGE = new RegExp('^(' + TOKEN + ')/(' + TOKEN + ')$', 'i');
var PARAM = new RegExp('^' + TOKEN + '=(?:' + TOKEN + '|"[^"]*")$', 'i');
var QVALUE = /^q=(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/i;
// A viewer can send a header of several kilobytes: only so many ranges and parameters count.
var MAX_RANGES = 64;
var MAX_PARAMS = 8;

function headerValue(request, name) {
    var header = request.headers[name];
    if (!header) {
        return '';
    }
    if (header.multiValue) {
        return header.multiValue.slice(0, MAX_RANGES).map(function (v) { return v.value; }).join(',');
    }
    return header.value;
}

// Each format's weight from Accept (RFC 9110 12.5.1): the most specific matching range wins,
// the lowest q among equally specific ones; media-type parameters are ignored; a malformed
// range is skipped. null when the header has no valid range (as if it were absent). AVIF and
// WebP count only when named: browsers without them send image/* and */* too.
function weights(accept) {
    var found = {};
    var any = false;
    var ranges = accept.split(',', MAX_RANGES);
    for (var i = 0; i < ranges.length; i++) {
        var parts = ranges[i].split(';', MAX_PARAMS + 1);
        var range = MEDIA_RANGE.exec(parts[0].trim());
        if (!range || parts.length > MAX_PARAMS || (range[1] === '*' && range[2] !== '*')) {
            continue;
        }
        var q = 1;
        var valid = true;
        for (var j = 1; j < parts.length && valid; j++) {
            var param = parts[j].trim();
            if (QVALUE.test(param)) {
                q = parseFloat(param.substring(2));
            } else {
                valid = PARAM.test(param) && !/^q=/i.test(param);
            }
        }
        if (!valid) {
            continue;
        }
        any = true;
        var type = range[1].toLowerCase();
        var subtype = range[2].toLowerCase();
        var specificity = type === '*' ? 1 : (subtype === '*' ? 2 : 3);
        for (var k = 0; k < PREFERENCE.length; k++) {
            var format = PREFERENCE[k];
            if ((specificity === 3 && (type !== 'image' || subtype !== format)) ||
                (specificity === 2 && type !== 'image') ||
                (specificity < 3 && MODERN.indexOf(format) !== -1)) {
                continue;
            }
            var seen = found[format];
            if (!seen || specificity > seen.s || (specificity === seen.s && q < seen.q)) {
                found[format] = { s: specificity, q: q };
            }
        }
    }
    return any ? found : null;
}

function pickFormat(request, allowed) {
    var found = weights(headerValue(request, 'accept'));
    var best = null;
    var bestQ = 0;
    for (var i = 0; i < PREFERENCE.length; i++) {
        var format = PREFERENCE[i];
        var q = found === null ? (MODERN.indexOf(format) === -1 ? 1 : 0) :
            (found[format] ? found[format].q : 0);
        if (allowed.indexOf(format) !== -1 && q > bestQ) {
            best = format;
            bestQ = q;
        }
    }
    if (best !== null) {
        return best;
    }
    // Nothing allowed is acceptable: answer in the most widely understood format (RFC 9110
    // lets a server disregard Accept rather than answer 406).
    return FALLBACK.filter(function (f) { return allowed.indexOf(f) !== -1; })[0];
}

function hint(request, names, pattern, max) {
    for (var i = 0; i < names.length; i++) {
        var value = headerValue(request, names[i]).trim();
        if (pattern.test(value)) {
            var n = parseFloat(value);
            return n > 0 && n <= max ? n : null;
        }
    }
    return null;
}

// The width a browser's client hints ask for, in device pixels, or null. Sec-CH-Width is
// already in device pixels; a viewport width is in CSS pixels and is scaled by the DPR.
function hintedWidth(request) {
    var INTEGER = /^[0-9]{1,5}$/;
    var width = hint(request, ['sec-ch-width', 'width'], INTEGER, 99999);
    if (width !== null) {
        return Math.ceil(width);
    }
    var viewport = hint(request, ['sec-ch-viewport-width', 'viewport-width'], INTEGER, 99999);
    if (viewport === null) {
        return null;
    }
    var dpr = hint(request, ['sec-ch-dpr', 'dpr'], /^[0-9]{1,2}(?:\.[0-9]{1,3})?$/, 8);
    // Less a hair, so 400 x 1.1 (440.00000000000006 in binary) is 440.
    return Math.ceil(viewport * (dpr === null ? 1 : dpr) - 1e-6);
}

function handler(event) {
    var request = event.request;
    if (request.uri.indexOf('/variants/') === 0) {
        return validKey(request.uri.substring(10)) ? request : badRequest('invalid variant path');
    }
    if (request.uri.indexOf('/img/') !== 0) {
        return request;
    }
    var key = request.uri.substring(5);
    if (!validKey(key)) {
        return badRequest('invalid image key');
    }
    var query = request.querystring;
    var width = number(query.w);
    if (width === null) {
        width = hintedWidth(request);
    }
    if (width === null || isNaN(width) || width <= 0) {
        return badRequest('w must be a positive whole number of pixels');
    }
    var height = number(query.h);
    if (height !== null && isNaN(height)) {
        return badRequest('h must be a whole number of pixels');
    }
    var format;
    if (query.fmt) {
        format = query.fmt.value === 'jpg' ? 'jpeg' : query.fmt.value;
        if (STOWAGE_CONFIG.formats.indexOf(format) === -1) {
            return badRequest('fmt must be one of ' + STOWAGE_CONFIG.formats.join(', '));
        }
    } else {
        format = pickFormat(request, STOWAGE_CONFIG.formats);
    }
    var fit = query.fit ? query.fit.value : 'fit';
    if (STOWAGE_CONFIG.fits.indexOf(fit) === -1) {
        return badRequest('fit must be one of ' + STOWAGE_CONFIG.fits.join(', '));
    }
    var size;
    if (fit === 'cover') {
        if (!height) {
            return badRequest('fit=cover needs w and h');
        }
        size = coverSize(width, height);
        if (size === null) {
            return badRequest('no size of this deployment allows fit=cover');
        }
    } else if (STOWAGE_CONFIG.boxes.some(function (b) { return b[0] === width && b[1] === height; })) {
        size = [width, height];
    } else {
        var heights = STOWAGE_CONFIG.heights.filter(function (h) { return h > 0; });
        var h = (height === null || height === 0 || heights.length === 0) ? 0 : snap(height, heights);
        if (h === 0 && STOWAGE_CONFIG.heights.indexOf(0) === -1) {
            h = snap(1, heights);
        }
        size = [snap(width, STOWAGE_CONFIG.widths), h];
    }
    request.uri = '/variants/' + key + '/' + size[0] + 'x' + size[1] +
        (fit === 'cover' ? '-cover' : '') + '.' + format;
    request.querystring = {};
    return request;
}

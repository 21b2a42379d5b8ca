// CloudFront Function (viewer-request, cloudfront-js-2.0): friendly image URLs to variants.
//
//   /img/{original_key}?w=800[&h=600][&fmt=webp]  ->  /variants/{original_key}/{w}x{h}.{fmt}
//
// It runs on the /img/ and /variants/ behaviours. CloudFront chose the behaviour (and with
// it whether a signature is required) from the path the viewer sent, before this runs; a
// path that percent-encodes an unreserved character (/img/%69mages/...) is refused, because
// S3 and the resizer would decode it into a prefix another behaviour guards.
//
// The width (and height) snap to the allowlist so the cache key stays small; without fmt the
// format comes from Accept (AVIF > WebP > JPEG). Malformed input gets 400. The allowlist is
// written into this file at synth from the deployment config (STOWAGE_CONFIG below).
var STOWAGE_CONFIG = __STOWAGE_CONFIG__;

var NON_CANONICAL = /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2d|2e|5f|7e)/i;

function badRequest(message) {
    return {
        statusCode: 400,
        statusDescription: 'Bad Request',
        headers: {
            'content-type': { value: 'text/plain; charset=utf-8' },
            'cache-control': { value: 'no-store' },
            'x-content-type-options': { value: 'nosniff' },
            'content-security-policy': { value: "default-src 'none'; sandbox" }
        },
        body: message
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

function validKey(key) {
    if (key.length === 0 || key.length > 3072 || NON_CANONICAL.test(key)) {
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

function pickFormat(request, allowed) {
    var accept = request.headers.accept ? request.headers.accept.value : '';
    var order = ['avif', 'webp'];
    for (var i = 0; i < order.length; i++) {
        if (allowed.indexOf(order[i]) !== -1 && accept.indexOf('image/' + order[i]) !== -1) {
            return order[i];
        }
    }
    return allowed.indexOf('jpeg') !== -1 ? 'jpeg' : allowed[0];
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
    var heights = STOWAGE_CONFIG.heights.filter(function (h) { return h > 0; });
    var h = (height === null || height === 0 || heights.length === 0) ? 0 : snap(height, heights);
    if (h === 0 && STOWAGE_CONFIG.heights.indexOf(0) === -1) {
        h = snap(1, heights);
    }
    request.uri = '/variants/' + key + '/' + snap(width, STOWAGE_CONFIG.widths) + 'x' + h +
        '.' + format;
    request.querystring = {};
    return request;
}

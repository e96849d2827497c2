/* Client-side callbacks of the lakehouse dashboard: theme, putting the server-built URL in place, CSV downloads. */
(function () {
    "use strict";
    function csvCell(v) {
        if (v === null || v === undefined) { return ""; }
        if (typeof v === "number" && !isFinite(v)) { return ""; }
        var s = String(v);
        return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    }

    function toCsv(columns, rows) {
        var lines = [columns.map(csvCell).join(",")];
        for (var i = 0; i < rows.length; i++) { lines.push(rows[i].map(csvCell).join(",")); }
        return lines.join("\n") + "\n";
    }

    // plotly.py >= 6 may ship numpy arrays as {dtype, bdata}; decode them for the CSV fallback
    var TYPED = {i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array, i4: Int32Array,
                 u4: Uint32Array, f4: Float32Array, f8: Float64Array};
    function arr(a) {
        if (a === null || a === undefined) { return []; }
        if (Array.isArray(a)) { return a; }
        if (a.bdata && TYPED[a.dtype]) {
            var bin = atob(a.bdata), buf = new Uint8Array(bin.length);
            for (var i = 0; i < bin.length; i++) { buf[i] = bin.charCodeAt(i); }
            return Array.prototype.slice.call(new TYPED[a.dtype](buf.buffer));
        }
        return [];
    }

    function figureTable(fig) {
        var meta = fig && fig.layout && fig.layout.meta;
        if (meta && meta.csv && meta.csv.cols) {
            var cols = meta.csv.cols, n = cols.length ? cols[0].length : 0, out = [];
            for (var r = 0; r < n; r++) { out.push(cols.map(function (c) { return c[r]; })); }
            return {columns: meta.csv.columns, rows: out};
        }
        if (meta && meta.csv && meta.csv.rows) { return meta.csv; }
        var rows = [];
        (fig && fig.data || []).forEach(function (t) {
            var xs = arr(t.x), ys = arr(t.y);
            var n = Math.max(xs.length, ys.length);
            for (var i = 0; i < n; i++) { rows.push([t.name || t.type, xs[i], ys[i]]); }
        });
        return {columns: ["series", "x", "y"], rows: rows};
    }

    function download(content, name) {
        return {content: content, filename: name + ".csv", type: "text/csv", base64: false};
    }

    // SQL Lab: Ctrl+Enter (Cmd+Enter) in the editor runs the query
    document.addEventListener("keydown", function (e) {
        if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && e.target && e.target.id === "sql-text") {
            var run = document.getElementById("sql-run");
            if (run) { e.preventDefault(); run.click(); }
        }
    });

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        lakehouse: {
            theme: function (toggle, stored) {
                var cc = window.dash_clientside.callback_context;
                var trig = (cc && cc.triggered || []).map(function (t) { return t.prop_id; });
                var theme = trig.indexOf("theme-toggle.value") >= 0 ? (toggle ? "dark" : "light")
                                                                     : (stored === "dark" ? "dark" : "light");
                document.documentElement.setAttribute("data-bs-theme", theme);
                var nu = window.dash_clientside.no_update;
                return [(theme === "dark") === Boolean(toggle) ? nu : theme === "dark",
                        theme === stored ? nu : theme];
            },
            // the queries come built from the server (app.url_queries, Filters.to_query): only put them in place
            syncUrl: function (query, paths) {
                var nu = window.dash_clientside.no_update;
                if (!query) { return (paths || []).map(function () { return nu; }); }
                var loc = window.location;
                var url = loc.pathname + query.page + loc.hash;
                if (url !== loc.pathname + loc.search + loc.hash) {
                    window.history.replaceState(window.history.state, "", url);
                }
                return (paths || []).map(function (p) { return p + query.nav; });
            },
            navActive: function (pathname, paths) {
                var here = (pathname || "/").replace(/\/+$/, "") || "/";
                return (paths || []).map(function (p) { return (p.replace(/\/+$/, "") || "/") === here; });
            },
            figureCsv: function (n, fig, id) {
                if (!n) { return window.dash_clientside.no_update; }
                var t = figureTable(fig);
                return download(toCsv(t.columns, t.rows), (id && id.id) || "chart");
            },
            tableCsv: function (n, rows, columns, id) {
                if (!n) { return window.dash_clientside.no_update; }
                var cols = (columns || []).map(function (c) { return c.id; });
                var names = (columns || []).map(function (c) { return Array.isArray(c.name) ? c.name.join(" ") : c.name; });
                var body = (rows || []).map(function (r) { return cols.map(function (c) { return r[c]; }); });
                return download(toCsv(names, body), (id && id.id) || "table");
            }
        }
    });
})();

(function () {
  "use strict";
  // Every text of the run goes on the page through textContent only, never as markup.
  var items = JSON.parse(document.getElementById("report-data").textContent).items;
  items.forEach(function (item, i) { item.order = i + 1; });
  var rows = document.getElementById("item-rows");
  var count = document.getElementById("item-count");
  var search = document.getElementById("search");
  var spreadMin = document.getElementById("spread-min");
  var checks = ["f-split", "f-wrong", "f-noverdict", "f-spread"].map(function (id) { return document.getElementById(id); });
  var sort = { key: "order", dir: 1 };
  var open = {};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function pct(x) { return x === null || x === undefined ? "–" : Math.round(100 * x) + "%"; }
  function resp(i) { return i === null || i === undefined ? "–" : "#" + (i + 1); }
  function haystack(item) {
    if (item.hay === undefined) {
      var parts = [item.id, item.section || "", item.query || ""].concat(item.responses || []);
      item.samples.forEach(function (s) { parts.push(s.principles || "", s.critique || "", s.text || "", s.failure || ""); });
      item.hay = parts.join("\n").toLowerCase();
    }
    return item.hay;
  }
  function visible(item) {
    var text = search.value.trim().toLowerCase();
    if (text && haystack(item).indexOf(text) < 0) return false;
    if (checks[0].checked && !item.split) return false;
    if (checks[1].checked && !item.wrong) return false;
    if (checks[2].checked && !item.noVerdict) return false;
    if (checks[3].checked && item.spread < Number(spreadMin.value || 0)) return false;
    return true;
  }
  function sortValue(item, key) {
    var v = item[key];
    if (v === null || v === undefined) return key === "agreement" ? -1 : "";
    return v;
  }
  function compare(a, b) {
    var x = sortValue(a, sort.key), y = sortValue(b, sort.key);
    if (x < y) return -sort.dir;
    if (x > y) return sort.dir;
    return a.order - b.order;
  }
  function flags(item) {
    var cell = el("td");
    if (item.error) cell.appendChild(el("span", "flag bad", "error: " + item.error));
    else if (item.noVerdict) cell.appendChild(el("span", "flag bad", "no verdict"));
    if (item.wrong) cell.appendChild(el("span", "flag bad", "wrong"));
    if (item.split) cell.appendChild(el("span", "flag", "split"));
    return cell;
  }
  function textBlock(parent, title, text) {
    parent.appendChild(el("h4", null, title));
    parent.appendChild(el("div", "text", text === null || text === undefined ? "(not recorded)" : text));
  }
  function detail(item) {
    var box = el("div", "detail-box");
    if (item.query !== null) textBlock(box, "Query", item.query);
    else box.appendChild(el("p", "muted", "Query and responses not available (see the note at the top)."));
    (item.responses || []).forEach(function (r, i) {
      var marks = [];
      if (i === item.best) marks.push("judged best");
      if (i === item.label) marks.push("labelled best");
      textBlock(box, "Response #" + (i + 1) + (marks.length ? " (" + marks.join(", ") + ")" : ""), r);
    });
    var voters = item.kept < item.valid ? " (the " + item.kept + " kept samples)" : "";
    box.appendChild(el("p", null, "Summed votes" + voters + ": " + (item.scores ? item.scores.join(", ") : "none") +
      (item.noVerdict && Object.keys(item.failures).length ? " (failed: " +
        Object.keys(item.failures).map(function (k) { return k + " " + item.failures[k]; }).join(", ") + ")" : "")));
    item.samples.forEach(function (s, i) {
      var div = el("div", "sample" + (s.kept ? "" : " dropped"));
      var head = "Sample " + (i + 1) + ": shown as " + s.shown.map(function (c) { return "#" + (c + 1); }).join(", ");
      head += s.scores ? "; scores in the caller's order " + s.scores.join(", ") : "; no scores";
      if (s.failure) head += "; failed: " + s.failure;
      if (s.meta !== null && s.meta !== undefined) head += "; meta " + s.meta.toFixed(3);
      head += s.kept ? "; kept" : "; dropped";
      div.appendChild(el("h4", null, head));
      if (s.principles !== null) textBlock(div, "Principles", s.principles);
      if (s.critique !== null) textBlock(div, "Critique", s.critique);
      if (s.text) textBlock(div, "Judgement as written", s.text);
      else if (s.principles === null && s.critique === null) div.appendChild(el("p", "muted", "Judgement text not recorded."));
      box.appendChild(div);
    });
    return box;
  }
  function row(item) {
    var tr = el("tr");
    tr.appendChild(el("td", null, item.order));
    var cell = el("td");
    var button = el("button", "open", item.id);
    button.type = "button";
    button.setAttribute("aria-expanded", open[item.order] ? "true" : "false");
    button.addEventListener("click", function () { open[item.order] = !open[item.order]; render(); focusItem(item.order); });
    button.dataset.order = String(item.order);
    cell.appendChild(button);
    tr.appendChild(cell);
    tr.appendChild(el("td", null, item.section || "–"));
    tr.appendChild(el("td", null, resp(item.best)));
    tr.appendChild(el("td", null, resp(item.label)));
    tr.appendChild(el("td", null, pct(item.agreement)));
    tr.appendChild(el("td", null, item.spread));
    tr.appendChild(el("td", null, item.valid + " / " + item.kept));
    tr.appendChild(flags(item));
    return tr;
  }
  function focusItem(order) {
    var target = rows.querySelector('button[data-order="' + order + '"]');
    if (target) target.focus();
  }
  function render() {
    var shown = items.filter(visible).sort(compare);
    var frag = document.createDocumentFragment();
    shown.forEach(function (item) {
      frag.appendChild(row(item));
      if (open[item.order]) {
        var tr = el("tr", "detail");
        var td = el("td");
        td.colSpan = 9;
        td.appendChild(detail(item));
        tr.appendChild(td);
        frag.appendChild(tr);
      }
    });
    rows.textContent = "";
    rows.appendChild(frag);
    count.textContent = shown.length + " of " + items.length + " items shown";
    document.body.dataset.visible = String(shown.length);
  }
  document.querySelectorAll("th button[data-sort]").forEach(function (button) {
    button.addEventListener("click", function () {
      var key = button.dataset.sort;
      sort.dir = sort.key === key ? -sort.dir : 1;
      sort.key = key;
      document.querySelectorAll("th[aria-sort]").forEach(function (th) { th.setAttribute("aria-sort", "none"); });
      button.parentNode.setAttribute("aria-sort", sort.dir > 0 ? "ascending" : "descending");
      render();
    });
  });
  [search, spreadMin].concat(checks).forEach(function (input) { input.addEventListener("input", render); });
  document.getElementById("clear").addEventListener("click", function () {
    search.value = "";
    checks.forEach(function (c) { c.checked = false; });
    render();
  });
  render();
  document.body.dataset.ready = "true";
})();

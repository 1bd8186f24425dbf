// Acme Recruit: "select all" and the selected count on list pages. Works without it, too.
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("[data-bulk-form]")) {
    const all = form.querySelector("[data-select-all]");
    const boxes = () => [...form.querySelectorAll('input[name="candidate_ids"]')];
    const count = form.querySelector("[data-selected-count]");
    const button = form.querySelector("[data-needs-selection]");
    const update = () => {
      const n = boxes().filter((b) => b.checked).length;
      if (all) {
        all.checked = n > 0 && n === boxes().length;
        all.indeterminate = n > 0 && n < boxes().length;
      }
      if (count) count.textContent = n ? `${n} selected` : "No candidates selected";
      if (button) button.disabled = n === 0;
    };
    all?.addEventListener("change", () => {
      for (const b of boxes()) b.checked = all.checked;
      update();
    });
    form.addEventListener("change", (event) => {
      if (event.target.name === "candidate_ids") update();
    });
    update();
  }
});

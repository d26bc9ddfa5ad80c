// Progressive enhancement only: every page works without JavaScript.
import { initAll } from './govuk-frontend.min.js'
initAll()

// A page waiting for work in the background (a bank statement being imported) names a JSON address in
// data-pf-poll; it is asked every few seconds, its progress text shown in [data-pf-progress] (outside
// the live region: a screen reader is not told every count), and the page is loaded again once the
// work has ended. Without JavaScript the page has a link to check again.
for (const waiting of document.querySelectorAll('[data-pf-poll]')) {
  const progress = document.querySelector('[data-pf-progress]')
  const poll = async () => {
    try {
      const response = await fetch(waiting.dataset.pfPoll, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      const state = response.ok ? await response.json() : {}
      if (state.final) {
        window.location.reload()
        return
      }
      if (progress && state.progress) {
        progress.textContent = state.progress
      }
    } catch (error) {
      // offline for a moment: ask again later
    }
    window.setTimeout(poll, 3000)
  }
  window.setTimeout(poll, 3000)
}

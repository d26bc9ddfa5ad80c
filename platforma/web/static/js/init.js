// Progressive enhancement only: every page works without JavaScript.
import { initAll } from './govuk-frontend.min.js'
initAll()

// A page waiting for work in the background (a bank statement being imported) names a JSON address in
// data-pf-poll; it is asked every few seconds and the page is loaded again once the work has ended.
// Without JavaScript the page has a link to check again.
for (const waiting of document.querySelectorAll('[data-pf-poll]')) {
  const poll = async () => {
    try {
      const response = await fetch(waiting.dataset.pfPoll, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      if (response.ok && (await response.json()).final) {
        window.location.reload()
        return
      }
    } catch (error) {
      // offline for a moment: ask again later
    }
    window.setTimeout(poll, 3000)
  }
  window.setTimeout(poll, 3000)
}

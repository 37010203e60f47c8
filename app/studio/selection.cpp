#include "selection.h"

#include "imagecanvas.h"
#include "plotspanel.h"
#include "tokenspage.h"

#include <QLabel>

#include <algorithm>

namespace studio {

void TokenSelection::setTokens(std::vector<qmpp::i64> tokens, const QString& what) {
    std::sort(tokens.begin(), tokens.end());
    tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
    if (tokens == m_tokens && what == m_what) return;
    m_tokens = std::move(tokens);
    m_what = m_tokens.empty() ? QString() : what;
    emit changed();
}

void TokenSelection::clear() {
    if (m_tokens.empty()) return;
    m_tokens.clear();
    m_what.clear();
    emit changed();
}

bool TokenSelection::contains(qmpp::i64 token) const {
    return std::binary_search(m_tokens.begin(), m_tokens.end(), token);
}

QString TokenSelection::summary() const {
    if (m_tokens.empty()) return {};
    return tr("selected %n token(s): %1", "", int(m_tokens.size())).arg(m_what);
}

std::vector<qmpp::i64> TokenSelection::groupOf(const qmpp::MergeResult& r, qmpp::i64 token) {
    if (token < 0 || token >= r.n) return {};
    const qmpp::i64 g = r.labels[std::size_t(token)];
    if (g < 0) return {token};
    std::vector<qmpp::i64> out;
    for (qmpp::i64 i = 0; i < r.n; ++i)
        if (r.labels[std::size_t(i)] == g) out.push_back(i);
    return out;
}

std::vector<qmpp::i64> TokenSelection::saliencyBin(const qmpp::MergeResult& r, int bin, int bins) {
    std::vector<qmpp::i64> out;
    for (qmpp::i64 i = 0; i < qmpp::i64(r.saliency.size()); ++i)
        if (std::min(bins - 1, int(r.saliency[std::size_t(i)] * bins)) == bin) out.push_back(i);
    return out;
}

std::vector<qmpp::i64> TokenSelection::groupsOfSize(const qmpp::MergeResult& r, qmpp::i64 size) {
    std::vector<qmpp::i64> out;
    for (qmpp::i64 i = 0; i < r.n; ++i) {
        const qmpp::i64 g = r.labels[std::size_t(i)];
        if (g >= 0 && r.groupSizes[std::size_t(g)] == size) out.push_back(i);
    }
    return out;
}

void linkSelection(TokenSelection* selection, ImageCanvas* canvas, TokensPage* tokens,
                   PlotsPanel* plots, QLabel* status) {
    canvas->setSelection(selection);
    tokens->setSelection(selection);
    plots->setSelection(selection);
    QObject::connect(selection, &TokenSelection::changed, status,
                     [selection, status] { status->setText(selection->summary()); });
}

} // namespace studio

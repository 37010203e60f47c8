// Linked selection: one set of selected tokens that every view shows and every view can set.
// The canvas and the token strip select a token's group by a click, the PCA scatter by a click
// or a Shift-drag rectangle, the similarity heatmap by a click on a row, the histograms by a
// click on a bar; each view then highlights the same tokens.
#pragma once

#include "qmpp/types.h"

#include <QObject>
#include <QString>

class QLabel;

#include <vector>

namespace studio {

class TokenSelection : public QObject {
    Q_OBJECT

  public:
    explicit TokenSelection(QObject* parent = nullptr) : QObject(parent) {}
    // Sorted and deduplicated; `what` says how it was made ("group 4", "saliency 0.35–0.40").
    void setTokens(std::vector<qmpp::i64> tokens, const QString& what);
    void clear();
    bool isEmpty() const { return m_tokens.empty(); }
    const std::vector<qmpp::i64>& tokens() const { return m_tokens; }
    bool contains(qmpp::i64 token) const;
    QString what() const { return m_what; }
    // One line for the status bar ("" when empty).
    QString summary() const;

    // Every token of `token`'s group (a token pruning dropped: itself alone).
    static std::vector<qmpp::i64> groupOf(const qmpp::MergeResult& r, qmpp::i64 token);
    // Tokens whose saliency falls in bin `bin` of `bins` equal bins over [0, 1].
    static std::vector<qmpp::i64> saliencyBin(const qmpp::MergeResult& r, int bin, int bins);
    // Tokens of the groups that hold `size` tokens.
    static std::vector<qmpp::i64> groupsOfSize(const qmpp::MergeResult& r, qmpp::i64 size);

  signals:
    void changed();

  private:
    std::vector<qmpp::i64> m_tokens;
    QString m_what;
};

class ImageCanvas;
class TokensPage;
class PlotsPanel;

// Gives every view the one selection, and shows its summary in `status` when it changes.
void linkSelection(TokenSelection* selection, ImageCanvas* canvas, TokensPage* tokens,
                   PlotsPanel* plots, QLabel* status);

} // namespace studio

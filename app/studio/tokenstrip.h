// The token strip: a sequence of tokens laid out like text (wrapping), each token's background
// by saliency, the merged spans (runs of one group) bracketed and framed in their group's
// colour, and lone members of a larger group underlined in its colour.
#pragma once

#include "qmpp/views.h"

#include <QColor>
#include <QRect>
#include <QStringList>
#include <QWidget>

#include <vector>

namespace studio {

class TokenSelection;

class TokenStrip : public QWidget {
    Q_OBJECT
  public:
    explicit TokenStrip(QWidget* parent = nullptr);

    // text: one string per token (empty: the token indices); saliency in [0, 1]; labels: each
    // token's group (-1: dropped by pruning, drawn dark).
    void setTokens(const QStringList& text, const std::vector<float>& saliency,
                   const std::vector<qmpp::i64>& labels);
    void clear();
    // Backgrounds of one's own instead of saliency (the language model's change in loss), with
    // what hovering each token adds; setTokens clears them.
    void setBackgrounds(const std::vector<QRgb>& colours, const QStringList& notes);

    qmpp::i64 count() const { return qmpp::i64(m_text.size()); }
    const std::vector<qmpp::TextSpan>& spans() const { return m_spans; }
    QRect tokenRect(qmpp::i64 i) const { return m_rects.at(std::size_t(i)); }
    QColor background(qmpp::i64 i) const;
    QString tokenText(qmpp::i64 i) const { return m_text.at(int(i)); }
    // What hovering token i shows.
    QString describe(qmpp::i64 i) const;

    // The linked selection, drawn as a frame around each selected token.
    void setSelection(const TokenSelection* selection);
    qmpp::i64 tokenAt(const QPoint& pos) const; // -1: none
    bool hasHeightForWidth() const override { return true; }
    int heightForWidth(int w) const override;
    QSize sizeHint() const override;

  signals:
    void tokenHovered(qmpp::i64 index, const QString& text);
    void tokenClicked(qmpp::i64 index); // -1: a click beside every token

  protected:
    void paintEvent(QPaintEvent*) override;
    void resizeEvent(QResizeEvent*) override;
    void mouseMoveEvent(QMouseEvent* e) override;
    void mousePressEvent(QMouseEvent* e) override;

  private:
    // Lays the tokens out for width w; returns the height used (rects stored when `store`).
    int layout(int w, bool store) const;

    QStringList m_text;
    std::vector<float> m_saliency;
    std::vector<QRgb> m_colours; // setBackgrounds (empty: saliency)
    QStringList m_notes;
    std::vector<qmpp::i64> m_labels;
    std::vector<qmpp::i64> m_groupSize;
    std::vector<qmpp::TextSpan> m_spans;
    std::vector<bool> m_inSpan;
    bool inSpan(qmpp::i64 i) const;
    mutable std::vector<QRect> m_rects;
    qmpp::i64 m_hover = -1;
    const TokenSelection* m_selection = nullptr;
};

} // namespace studio

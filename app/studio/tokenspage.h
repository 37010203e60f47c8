// The Tokens page: the token strip with a layer selector and batch item selector above, and
// below it the group-ordered similarity heatmap, the PCA scatter and the per-layer entropy.
#pragma once

#include "runner.h"
#include "tokenstrip.h"

#include <QWidget>

class QComboBox;
class QCPColorMap;
class QCustomPlot;
class QLabel;
class QSpinBox;
class QCPGraph;
class QMouseEvent;
class QRubberBand;
class QSplitter;
class QTabWidget;

namespace studio {

class TokenSelection;

class TokensPage : public QWidget {
    Q_OBJECT
  public:
    explicit TokensPage(QWidget* parent = nullptr);
    // A view beside the token plots (the language model's), as a tab under the strip.
    void addView(QWidget* view, const QString& title);
    QTabWidget* views() const { return m_views; }

    // batchItem: the item of a [B, N, D] input shown (-1: the whole batch was loaded, item 0).
    void setInput(const StudioInput& in, qmpp::i64 batchItem = -1);
    void setOutput(std::shared_ptr<const RunOutput> out);
    // -1: the combined saliency; 0..L-1: that layer's.
    void selectLayer(int layer);
    int selectedLayer() const;

    TokenStrip* strip() const { return m_strip; }
    QComboBox* layerSelector() const { return m_layer; }
    QSpinBox* batchSelector() const { return m_batch; }
    QCustomPlot* similarityPlot() const { return m_simPlot; }
    QCPColorMap* similarityMap() const { return m_simMap; }
    QCustomPlot* pcaPlot() const { return m_pcaPlot; }
    QCustomPlot* layerPlot() const { return m_layerPlot; }
    // The linked selection: the strip, the PCA scatter (click: a group; Shift-drag: a
    // rectangle) and the heatmap (click: a row's group) set it, and all three show it.
    void setSelection(TokenSelection* selection);
    // The token whose PCA point is nearest a pixel of the PCA plot, within maxPixels (else -1).
    qmpp::i64 pcaTokenAt(const QPointF& pixel, double maxPixels = 8) const;
    // Tokens whose PCA points lie in a pixel rectangle of the PCA plot.
    std::vector<qmpp::i64> pcaTokensIn(const QRectF& pixels) const;
    // The token in row `row` of the heatmap (its first, when a row averages several), or -1.
    qmpp::i64 heatmapTokenAt(const QPointF& pixel) const;
    // What hovering a token shows: its word, or its patch's row and column.
    QString describeToken(qmpp::i64 token) const;
    // Selects `token`'s group (what a click on the strip, a PCA point or a heatmap row does).
    void selectGroupOf(qmpp::i64 token);
    QCPGraph* pcaSelectionGraph() const { return m_pcaSel; }
    QCPGraph* heatmapSelectionGraph() const { return m_simSel; }

  signals:
    void batchItemChanged(int item);
    void tokenHovered(const QString& text);

  protected:
    void changeEvent(QEvent* e) override;
    bool eventFilter(QObject* o, QEvent* e) override;

  private:
    void refreshStrip();
    void refreshPlots();
    void refreshSelection();
    void pcaPress(QMouseEvent* e);
    void pcaMove(QMouseEvent* e);
    void pcaRelease(QMouseEvent* e);
    void restyle();

    TokenStrip* m_strip;
    QComboBox* m_layer;
    QSpinBox* m_batch;
    QLabel *m_batchLabel, *m_note;
    QCustomPlot *m_simPlot, *m_pcaPlot, *m_layerPlot;
    QCPColorMap* m_simMap;
    QCPGraph *m_pcaSel = nullptr, *m_simSel = nullptr;
    TokenSelection* m_selection = nullptr;
    QRubberBand* m_band = nullptr;
    QSplitter* m_plotsSplit = nullptr;
    QTabWidget* m_views = nullptr;
    bool m_plotsSized = false; // the user set the plots' widths
    QPoint m_bandOrigin;
    std::vector<qmpp::i64> m_orderPos; // each token's position in the heatmap's group order
    StudioInput m_in;
    std::shared_ptr<const RunOutput> m_out;
};

} // namespace studio

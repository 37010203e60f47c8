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

namespace studio {

class TokensPage : public QWidget {
    Q_OBJECT
  public:
    explicit TokensPage(QWidget* parent = nullptr);

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

  signals:
    void batchItemChanged(int item);
    void tokenHovered(const QString& text);

  protected:
    void changeEvent(QEvent* e) override;

  private:
    void refreshStrip();
    void refreshPlots();
    void restyle();

    TokenStrip* m_strip;
    QComboBox* m_layer;
    QSpinBox* m_batch;
    QLabel *m_batchLabel, *m_note;
    QCustomPlot *m_simPlot, *m_pcaPlot, *m_layerPlot;
    QCPColorMap* m_simMap;
    StudioInput m_in;
    std::shared_ptr<const RunOutput> m_out;
};

} // namespace studio
